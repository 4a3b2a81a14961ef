"""The SMS double opt-in: codes, what an SMS says, and which topics a profile receives by SMS (no AWS).

SMS goes to a number only after its owner entered the code sent to it (``Profile.verified_phone``);
until then the customer's choice of SMS for a topic is kept, and shown as waiting for the code.
A code is six digits, kept only as an HMAC (keyed with the link-signing secret), lives for the
catalog's ``sms.code_lifetime_minutes``, takes ``sms.code_attempts`` wrong entries and is used once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from selfservice.domain.consent import receiving_topics
from selfservice.domain.models import Change, ChannelId, Profile

CODE_DIGITS = 6
SMS_SEGMENT = 160
"""Septets of one GSM-7 SMS; a longer text is sent (and billed) as several."""
STOP_KEYWORDS = frozenset({"STOP", "STOPP", "STOPALL", "ABMELDEN", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT"})
"""Replies that withdraw SMS consent (AWS End User Messaging's default opt-out keywords, and German ones)."""

# GSM 03.38: the basic character set (one septet each) and its extension table (two septets each).
_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")
_CODE_INPUT = re.compile(r"[0-9]{6}")

SmsState = Literal["off", "pending", "active"]


def gsm7_septets(text: str) -> int | None:
    """How many septets ``text`` takes in GSM-7, or None if it needs UCS-2 (70 characters per SMS)."""
    septets = 0
    for character in text:
        if character in _GSM7_BASIC:
            septets += 1
        elif character in _GSM7_EXTENSION:
            septets += 2
        else:
            return None
    return septets


def fits_one_sms(text: str) -> bool:
    septets = gsm7_septets(text)
    return septets is not None and septets <= SMS_SEGMENT


def sms_text(company: str, code: str, language: str, minutes: int, reply_to: str | None, site: str) -> str:
    """The code SMS: who sends it, the code, how long it lives and how to stop SMS, in one GSM-7 SMS.

    ``reply_to`` is the number that takes a STOP reply (the origination number); without one the
    text names the pages where SMS is switched off. The validity is left out if the text would
    otherwise need a second SMS (a long company name or site).
    """
    if language == "en":
        stop = f"To opt out, text STOP to {reply_to}" if reply_to else f"Opt out: {site}"
        parts = [f"{company}: Your code is {code}.", f"Valid for {minutes} min.", stop]
    else:
        stop = f"Abmelden: STOP an {reply_to}" if reply_to else f"Abmelden: {site}"
        parts = [f"{company}: Ihr Code lautet {code}.", f"Gültig {minutes} Min.", stop]
    text = " ".join(parts)
    return text if fits_one_sms(text) else f"{parts[0]} {parts[2]}"


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def code_digest(key: str, profile_id: str, phone: str, code: str) -> str:
    """The code as it is stored: an HMAC over profile, number and code (a leaked table reveals no
    code, and a code is worth nothing for another profile or number)."""
    message = f"sms-code|{profile_id}|{phone}|{code}".encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def entered_code(raw: str) -> str | None:
    """What the customer typed, as a code: six ASCII digits, spaces and dashes ignored; else None."""
    cleaned = re.sub(r"[\s-]", "", raw)
    return cleaned if _CODE_INPUT.fullmatch(cleaned) else None


class SmsChallenge(BaseModel):
    """The code last sent to a profile's number (one per profile: a new code replaces the old one)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    profile_id: str
    phone: str
    code_hash: str
    sent_at: dt.datetime
    expires_at: dt.datetime
    attempts: int = 0
    """Wrong entries so far."""

    def live(self, phone: str | None, now: dt.datetime, max_attempts: int) -> bool:
        """Still good for ``phone``: not expired, not used up by wrong entries."""
        return self.phone == phone and now < self.expires_at and self.attempts < max_attempts


class Verdict(StrEnum):
    RIGHT = "right"
    WRONG = "wrong"
    EXPIRED = "expired"
    USED_UP = "used_up"
    """The code took its wrong entries: a new one must be asked for."""
    NO_CODE = "no_code"
    """No code was sent to the current number (or the number changed since)."""


def judge(
    challenge: SmsChallenge | None, phone: str | None, digest: str | None, now: dt.datetime, max_attempts: int
) -> Verdict:
    """What an entered code (its ``digest``; None: not six digits) is worth against the challenge."""
    if challenge is None or phone is None or challenge.phone != phone:
        return Verdict.NO_CODE
    if challenge.attempts >= max_attempts:
        return Verdict.USED_UP
    if now >= challenge.expires_at:
        return Verdict.EXPIRED
    if digest is not None and hmac.compare_digest(digest, challenge.code_hash):
        return Verdict.RIGHT
    return Verdict.WRONG


def sms_topics(profile: Profile) -> list[str]:
    """The subscribed topics the customer chose SMS for (whether or not the number is confirmed)."""
    return [
        topic for topic in profile.preferences.subscribed_topics() if "sms" in profile.preferences.channels_for(topic)
    ]


def sms_receiving_topics(profile: Profile) -> list[str]:
    """The topics the customer receives by SMS now: chosen, subscribed and the number confirmed."""
    if not profile.sms_verified():
        return []
    received = set(receiving_topics(profile))
    return [topic for topic in sms_topics(profile) if topic in received]


def sms_state(profile: Profile) -> SmsState:
    """``off``: no topic by SMS; ``pending``: chosen, the number not confirmed; ``active``: SMS goes out."""
    if not sms_topics(profile):
        return "off"
    return "active" if profile.sms_verified() else "pending"


def code_wanted(profile: Profile) -> bool:
    """A code is to be offered: SMS chosen for a topic and the current number not confirmed."""
    return bool(sms_topics(profile)) and profile.phone is not None and not profile.sms_verified()


def without_sms(profile: Profile) -> tuple[Profile, list[Change]]:
    """The profile after a STOP, and what changed: SMS off for every topic (a topic only by SMS is
    switched off: the customer never asked for it by email), and no confirmed number any more."""
    updated = profile.model_copy(deep=True)
    prefs = updated.preferences
    changes: list[Change] = []
    for topic_id, channels in sorted(prefs.channels.items()):
        if "sms" not in channels:
            continue
        kept: list[ChannelId] = [channel for channel in channels if channel != "sms"]
        if kept:
            prefs.channels[topic_id] = kept
        else:
            del prefs.channels[topic_id]
            if prefs.topics.get(topic_id):
                prefs.topics[topic_id] = False
                changes.append(Change(field=f"preferences.topics.{topic_id}", before=True, after=False))
        changes.append(Change(field=f"preferences.channels.{topic_id}", before=list(channels), after=kept))
    if updated.verified_phone is not None:
        changes.append(Change(field="verified_phone", before=updated.verified_phone, after=None))
        updated.verified_phone = None
    return updated, changes


class InboundSms(BaseModel):
    """A reply to our SMS as AWS End User Messaging publishes it (two-way SMS) to an SNS topic."""

    model_config = ConfigDict(extra="ignore")

    originationNumber: str = Field(pattern=r"^\+[1-9][0-9]{4,14}$")  # the customer's number (AWS's camelCase)
    destinationNumber: str = Field(min_length=1, max_length=32)
    messageKeyword: str = Field(default="", max_length=64)
    messageBody: str = Field(default="", max_length=1600)
    inboundMessageId: str = Field(min_length=1, max_length=128)

    def keyword(self) -> str | None:
        """The STOP keyword of the reply (the keyword AWS matched, else the reply's first word), or None."""
        for candidate in (self.messageKeyword, *self.messageBody.split()[:1]):
            word = candidate.strip().upper()
            if word in STOP_KEYWORDS:
                return word
        return None
