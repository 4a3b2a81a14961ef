"""The SMS double opt-in's rules: codes, their verdicts, the SMS text, STOP, and SMS consents in the ledger."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from selfservice.catalog import load_catalog
from selfservice.domain.changes import ProfilePatch, apply_patch
from selfservice.domain.consent import SMS, ConsentContext, proven_topics, sms_consent_entries
from selfservice.domain.models import FieldValue, LedgerKind, Preferences, Profile, Source, SubscriptionStatus
from selfservice.domain.sms import (
    InboundSms,
    SmsChallenge,
    Verdict,
    code_digest,
    code_wanted,
    entered_code,
    fits_one_sms,
    gsm7_septets,
    judge,
    new_code,
    sms_receiving_topics,
    sms_state,
    sms_text,
    without_sms,
)

NOW = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)
PHONE = "+491701234567"
KEY = "secret"
EVENTS = Path(__file__).resolve().parents[1] / "events"
CATALOG = load_catalog(Path(__file__).resolve().parents[2] / "templates" / "catalog.yaml")


def subscriber(channels: dict[str, list[str]], verified: str | None = None, phone: str | None = PHONE) -> Profile:
    fields = {"phone": FieldValue(value=phone, confirmed_at=NOW)} if phone else {}
    return Profile(
        email="eva@example.com",
        status=SubscriptionStatus.SUBSCRIBED,
        fields=fields,
        preferences=Preferences(topics={"offers": True, "events": True}, channels=channels),  # type: ignore[arg-type]
        verified_phone=verified,
    )


def challenge(code: str = "123456", attempts: int = 0, minutes: int = 10) -> SmsChallenge:
    return SmsChallenge(
        profile_id="p1",
        phone=PHONE,
        code_hash=code_digest(KEY, "p1", PHONE, code),
        sent_at=NOW,
        expires_at=NOW + dt.timedelta(minutes=minutes),
        attempts=attempts,
    )


def test_codes_are_six_random_digits():
    codes = {new_code() for _ in range(200)}
    assert all(len(code) == 6 and code.isdigit() for code in codes)
    assert len(codes) > 190


def test_a_code_is_kept_only_as_a_keyed_hash_bound_to_profile_and_number():
    digest = code_digest(KEY, "p1", PHONE, "123456")
    assert "123456" not in digest
    assert digest != code_digest("other key", "p1", PHONE, "123456")
    assert digest != code_digest(KEY, "p2", PHONE, "123456")
    assert digest != code_digest(KEY, "p1", "+491709999999", "123456")


@pytest.mark.parametrize(
    ("entered", "sent", "at", "expected"),
    [
        ("123456", challenge(), NOW + dt.timedelta(minutes=9), Verdict.RIGHT),
        ("654321", challenge(), NOW, Verdict.WRONG),
        ("123456", challenge(), NOW + dt.timedelta(minutes=10), Verdict.EXPIRED),
        ("123456", challenge(attempts=5), NOW, Verdict.USED_UP),
        ("123456", None, NOW, Verdict.NO_CODE),
    ],
    ids=["right", "wrong", "expired", "used up by wrong entries", "none sent"],
)
def test_what_an_entered_code_is_worth(entered, sent, at, expected):
    assert judge(sent, PHONE, code_digest(KEY, "p1", PHONE, entered), at, 5) == expected


def test_a_code_sent_to_another_number_confirms_nothing():
    assert judge(challenge(), "+491709999999", code_digest(KEY, "p1", PHONE, "123456"), NOW, 5) == Verdict.NO_CODE


@pytest.mark.parametrize(("typed", "code"), [("123456", "123456"), (" 123 456 ", "123456"), ("123-456", "123456")])
def test_spaces_and_dashes_in_a_typed_code_are_ignored(typed, code):
    assert entered_code(typed) == code


@pytest.mark.parametrize("typed", ["12345", "1234567", "12a456", "１２３４５６", "²23456", ""])
def test_anything_but_six_ascii_digits_is_no_code(typed):
    assert entered_code(typed) is None


@pytest.mark.parametrize("language", ["de", "en"])
@pytest.mark.parametrize("reply_to", ["+4915199990000", None])
def test_the_code_sms_names_the_company_and_how_to_stop_in_one_gsm7_sms(language, reply_to):
    text = sms_text("Example Shop", "042137", language, 10, reply_to, "preferences.example.com")
    assert text.startswith("Example Shop: ")
    assert "042137" in text
    assert ("STOP" in text) if reply_to else ("preferences.example.com" in text)
    septets = gsm7_septets(text)
    assert septets is not None, "GSM-7: an umlaut of the German text must not turn it into UCS-2 (70 characters)"
    assert septets <= 160


def test_a_long_company_name_drops_the_validity_to_stay_in_one_sms():
    company = "Müller & Söhne Haushaltswaren, Eisenwaren und Gartenbedarf GmbH & Co. KG, Niederlassung Süd"
    text = sms_text(company, "042137", "de", 10, "+4915199990000", "preferences.example.com")
    assert fits_one_sms(text)
    assert "Gültig" not in text
    assert "STOP an +4915199990000" in text


def test_gsm7_counts_extension_characters_twice_and_refuses_others():
    assert gsm7_septets("ÄÖÜäöüß") == 7
    assert gsm7_septets("€[]") == 6
    assert gsm7_septets("Grüße 🙂") is None


def test_sms_is_pending_until_the_current_number_is_the_confirmed_one():
    assert sms_state(subscriber({"offers": ["email"]})) == "off"
    pending = subscriber({"offers": ["email", "sms"]})
    assert (sms_state(pending), code_wanted(pending), sms_receiving_topics(pending)) == ("pending", True, [])
    active = subscriber({"offers": ["email", "sms"]}, verified=PHONE)
    assert (sms_state(active), code_wanted(active), sms_receiving_topics(active)) == ("active", False, ["offers"])
    moved = subscriber({"offers": ["sms"]}, verified="+491709999999")
    assert (sms_state(moved), sms_receiving_topics(moved)) == ("pending", [])


def test_a_new_number_forgets_the_confirmed_one():
    active = subscriber({"offers": ["email", "sms"]}, verified=PHONE)
    changed, changes = apply_patch(active, ProfilePatch(fields={"phone": "+49 170 9999999"}), CATALOG, NOW)
    assert changed.verified_phone is None
    assert (changes[-1].field, changes[-1].before) == ("verified_phone", PHONE)
    same, changes = apply_patch(active, ProfilePatch(fields={"phone": "+49 170 1234567"}), CATALOG, NOW)
    assert same.verified_phone == PHONE
    assert not changes


def test_stop_switches_sms_off_everywhere_and_a_topic_only_by_sms_off():
    active = subscriber({"offers": ["email", "sms"], "events": ["sms"]}, verified=PHONE)
    stopped, changes = without_sms(active)
    assert stopped.preferences.channels == {"offers": ["email"]}
    assert stopped.preferences.topics == {"offers": True, "events": False}
    assert stopped.verified_phone is None
    assert {c.field for c in changes} == {
        "preferences.channels.offers",
        "preferences.channels.events",
        "preferences.topics.events",
        "verified_phone",
    }


def test_sms_consents_are_their_own_entries_and_replay_separately_from_the_topics():
    pending = subscriber({"offers": ["email", "sms"]})
    active = pending.model_copy(update={"verified_phone": PHONE})
    context = ConsentContext(Source.PAGE, NOW, "sms-2026-01", {"evidence_hash": "h"})
    [given] = sms_consent_entries(pending, active, context, sms_receiving_topics)
    assert (given.kind, given.topics, given.consent_version) == (LedgerKind.CONSENT_GIVEN, ["offers"], "sms-2026-01")
    assert given.detail == {"evidence_hash": "h", "channel": SMS, "phone": PHONE}
    later = ConsentContext(Source.SMS_KEYWORD, NOW + dt.timedelta(days=1), "sms-2026-01", {"keyword": "STOP"})
    stopped, _changes = without_sms(active.model_copy(update={"sms_consent_version": "sms-2026-01"}))
    [withdrawn] = sms_consent_entries(active, stopped, later, sms_receiving_topics)
    assert (withdrawn.kind, withdrawn.detail["phone"]) == (LedgerKind.CONSENT_WITHDRAWN, PHONE)
    assert proven_topics([given]) == {}, "an SMS consent proves nothing about the topic's own consent"
    assert proven_topics([given], SMS)["offers"].receiving is True
    assert proven_topics([given, withdrawn], SMS)["offers"].receiving is False


def test_a_stop_reply_is_read_from_the_event_aws_publishes():
    event = json.loads((EVENTS / "sms_stop.json").read_text())
    reply = InboundSms.model_validate_json(event["Records"][0]["Sns"]["Message"])
    assert (reply.originationNumber, reply.keyword()) == ("+491701234567", "STOP")
    other = json.loads((EVENTS / "sms_reply_other.json").read_text())
    assert InboundSms.model_validate_json(other["Records"][0]["Sns"]["Message"]).keyword() is None
    assert (
        InboundSms(
            originationNumber=PHONE, destinationNumber="x", messageBody="abmelden bitte", inboundMessageId="1"
        ).keyword()
        == "ABMELDEN"
    )
