"""The SMS double opt-in: a code to the number, the number confirmed by it, and STOP replies.

SMS goes only to a number its owner confirmed with the code sent to it (``Profile.sms_verified``).
Switching SMS on for a topic, on the page or through the API, sends the code (:func:`offer_code`);
the customer enters it on the communication page (:func:`confirm_number`), which records the consent
(``consent_given``, channel ``sms``, with the number, the SMS wording version and the evidence) through
:func:`~selfservice.usecases.changes.save_changes`, the one writer of consents. A new number starts
again. A STOP reply withdraws SMS for every topic (:func:`stop`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlparse

from aws_lambda_powertools import Logger

from selfservice.domain.errors import NotFound, VersionConflict
from selfservice.domain.models import Change, LedgerEntry, LedgerKind, Profile, Source, phone_hash
from selfservice.domain.sms import (
    SmsChallenge,
    Verdict,
    code_digest,
    code_wanted,
    entered_code,
    judge,
    new_code,
    sms_text,
    without_sms,
)
from selfservice.texting import SmsNotSent
from selfservice.usecases.changes import save_changes
from selfservice.usecases.limits import admitted_for
from selfservice.usecases.ports import Adapters

logger = Logger(child=True)
_STOP_ROUNDS = 3


class CodeOutcome(StrEnum):
    SENT = "sent"
    LIVE = "live"
    """A code sent to this number is still good: none sent again (the page offers "send a new code")."""
    LIMITED = "limited"
    """Over a limit per number or client: nothing sent."""
    NOT_SENT = "not_sent"
    """The provider refused the SMS (a number it cannot reach)."""
    NOT_NEEDED = "not_needed"
    """No topic by SMS, no number, or the number is confirmed already."""


class CodeRefused(Exception):
    """An entered code does not confirm the number; ``reason`` says why (a :class:`Verdict` value,
    ``invalid`` for what is no six-digit code, or ``limited``), ``remaining`` the tries left."""

    def __init__(self, reason: str, remaining: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.remaining = remaining


def _site(adapters: Adapters) -> str:
    return urlparse(adapters.settings.public_base_url).netloc or adapters.settings.public_base_url


def newly_wanted(before: Profile, after: Profile) -> bool:
    """A change that (re)starts the SMS double opt-in: SMS chosen for a topic with a number not
    confirmed, where before it was not (SMS just switched on, or a new number)."""
    if not code_wanted(after):
        return False
    return not code_wanted(before) or before.phone != after.phone


def offer_code(
    adapters: Adapters, profile: Profile, source: Source, *, client_ip: str | None, again: bool = False
) -> CodeOutcome:
    """Send a code to the profile's number if SMS is chosen and the number not confirmed yet.

    Not again while a code sent to this number is still good, unless ``again`` (the customer asked
    for a new one). Counted per number and, with ``client_ip``, per client (Settings.rate_limits.sms_code).
    A new code replaces the old one. The ledger gets ``sms_code_sent`` with the number (never the code).
    """
    phone = profile.phone
    if phone is None or not code_wanted(profile):
        return CodeOutcome.NOT_NEEDED
    rules = adapters.catalog.sms_rules()
    now = adapters.clock()
    repository = adapters.repository
    if not again:
        challenge = repository.sms_challenge(profile.id)
        if challenge is not None and challenge.live(phone, now, rules.code_attempts):
            return CodeOutcome.LIVE
    if not admitted_for(adapters, "sms_code", phone_hash(phone), client_ip):
        return CodeOutcome.LIMITED
    code = new_code()
    key = adapters.signer().mac_keys()[0]
    challenge = SmsChallenge(
        profile_id=profile.id,
        phone=phone,
        code_hash=code_digest(key, profile.id, phone, code),
        sent_at=now,
        expires_at=now + dt.timedelta(minutes=rules.code_lifetime_minutes),
    )
    settings = adapters.settings
    text = sms_text(
        settings.company_name,
        code,
        profile.locale,
        rules.code_lifetime_minutes,
        settings.sms_origination_number or None,
        _site(adapters),
    )
    try:
        message_id = adapters.sms.send(phone, text)
    except SmsNotSent as error:
        logger.warning("SMS code not sent", extra={"profile_id": profile.id, "reason": str(error)})
        return CodeOutcome.NOT_SENT
    repository.put_sms_challenge(challenge)  # after the SMS: a code SNS refused is never offered on the page
    repository.append(
        LedgerEntry(
            profile_id=profile.id,
            at=now,
            kind=LedgerKind.SMS_CODE_SENT,
            source=source,
            detail={"phone": phone, "sms_message_id": message_id, "expires_at": challenge.expires_at.isoformat()},
        )
    )
    logger.info("SMS code sent", extra={"profile_id": profile.id})
    return CodeOutcome.SENT


def current_code(adapters: Adapters, profile: Profile) -> SmsChallenge | None:
    """The code sent to the profile's current number, if it is still good (the page offers its field)."""
    challenge = adapters.repository.sms_challenge(profile.id)
    rules = adapters.catalog.sms_rules()
    if challenge is None or not challenge.live(profile.phone, adapters.clock(), rules.code_attempts):
        return None
    return challenge


@dataclass(frozen=True)
class Entry:
    """A code as the customer entered it, with what a consent needs: the evidence and the client."""

    code: str
    evidence: dict[str, str]
    client_ip: str


def confirm_number(adapters: Adapters, profile: Profile, entry: Entry) -> Profile:
    """Confirm the profile's number with the code sent to it; CodeRefused if it does not.

    A right code sets ``verified_phone`` and records the SMS consent for the topics chosen by SMS,
    in one transaction that also uses the code up. Every entry takes one of the code's
    ``sms.code_attempts`` tries (after as many wrong ones it is used up) and counts against the
    limits per number and client.
    Nothing else is stored for a refused code.
    """
    phone = profile.phone
    if phone is None or not code_wanted(profile):
        raise CodeRefused(Verdict.NO_CODE.value)
    if not admitted_for(adapters, "sms_check", phone_hash(phone), entry.client_ip):
        raise CodeRefused("limited")
    code = entered_code(entry.code)
    if code is None:
        raise CodeRefused("invalid")
    rules = adapters.catalog.sms_rules()
    now = adapters.clock()
    challenge = adapters.repository.sms_challenge(profile.id)
    verdict = Verdict.NO_CODE
    for key in adapters.signer().mac_keys():
        verdict = judge(challenge, phone, code_digest(key, profile.id, phone, code), now, rules.code_attempts)
        if verdict != Verdict.WRONG:
            break
    if verdict not in (Verdict.RIGHT, Verdict.WRONG) or challenge is None:
        raise CodeRefused(verdict.value)
    # Every entry takes one of the code's tries first (atomically: entries sent at once cannot try
    # more codes than it allows), then counts as right or wrong.
    if not adapters.repository.take_sms_attempt(challenge, rules.code_attempts):
        raise CodeRefused(Verdict.USED_UP.value)
    if verdict == Verdict.WRONG:
        remaining = rules.code_attempts - challenge.attempts - 1
        logger.info("wrong SMS code", extra={"profile_id": profile.id, "remaining": remaining})
        raise CodeRefused(Verdict.USED_UP.value if remaining <= 0 else Verdict.WRONG.value, remaining)
    updated = profile.model_copy(deep=True)
    updated.verified_phone = phone
    updated.updated_at = now
    updated.version = profile.version + 1
    changes = [Change(field="verified_phone", before=profile.verified_phone, after=phone)]
    evidence = {**entry.evidence, "code_sent_at": challenge.sent_at.isoformat()}
    saved = save_changes(adapters, profile, updated, changes, Source.PAGE, evidence, sms_code_used=challenge.code_hash)
    logger.info("SMS number confirmed", extra={"profile_id": profile.id})
    return saved


def stop(adapters: Adapters, phone: str, keyword: str, message_id: str) -> int:
    """A STOP reply from ``phone``: SMS off for every topic of every profile whose confirmed number it
    is, recorded as a withdrawal (source ``sms-keyword``). Returns how many profiles changed; a
    repeated reply changes nothing more."""
    changed = 0
    for profile_id in adapters.repository.profiles_with_phone(phone):
        for _round in range(_STOP_ROUNDS):
            try:
                profile = adapters.repository.get(profile_id)
            except NotFound:
                break
            if profile.verified_phone != phone:
                break
            updated, changes = without_sms(profile)
            updated.updated_at = adapters.clock()
            updated.version = profile.version + 1
            evidence = {"keyword": keyword, "inbound_message_id": message_id}
            try:
                save_changes(adapters, profile, updated, changes, Source.SMS_KEYWORD, evidence)
            except VersionConflict:
                continue  # changed meanwhile: read it again
            changed += 1
            break
        else:
            raise VersionConflict(0)  # still changing after every round: the invocation is retried
    logger.info("SMS keyword handled", extra={"profiles": changed})
    return changed
