"""The consent proof from a ledger alone: the exact wording of the version each consent names, the
channel rules, the confirmation email a link answered, and the evidence check."""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
from pathlib import Path

import yaml

from selfservice.catalog import parse_catalog
from selfservice.domain import proof
from selfservice.domain.models import FieldValue, LedgerEntry, LedgerKind, Profile, Source, SubscriptionStatus
from selfservice.mail import RenderedEmail, body_record, part_digest, without_tokens
from selfservice.usecases.subscription import ClientEvidence

REPO = Path(__file__).resolve().parents[2]
BASE = yaml.safe_load((REPO / "templates" / "catalog.yaml").read_text(encoding="utf-8"))
T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
SENT = {"email_type": "confirm_subscription"}  # what the mailer adds to every email's entry


def catalog_with_two_wordings():
    data = copy.deepcopy(BASE)
    data["consent_wordings"] = [
        {"version": "2026-01", "valid_from": "2026-01-01", "text": {"de": "Alt.", "en": "Old."}},
        {"version": "2026-06", "valid_from": "2026-06-01", "text": {"de": "Neu.", "en": "New."}},
    ]
    return parse_catalog(data)


def entry(kind: LedgerKind, at: dt.datetime, source: Source = Source.PAGE, **values) -> LedgerEntry:
    return LedgerEntry(profile_id="p" * 32, at=at, kind=kind, source=source, **values)


def subscriber(**values) -> Profile:
    return Profile(id="p" * 32, email="kim@example.com", status=SubscriptionStatus.SUBSCRIBED, **values)


def test_each_consent_shows_the_exact_text_of_the_version_it_names():
    catalog = catalog_with_two_wordings()
    ledger = [
        entry(LedgerKind.CONSENT_GIVEN, T0, consent_version="2026-01", topics=["news"]),
        entry(LedgerKind.CONSENT_GIVEN, T0 + dt.timedelta(days=120), consent_version="2026-06", topics=["offers"]),
        entry(LedgerKind.CONSENT_GIVEN, T0, consent_version="1999-01", topics=["events"]),
    ]
    document = proof.build(subscriber(), ledger, catalog, T0)
    wordings = {w.version: w for w in document.wordings}
    assert wordings["2026-01"].text == {"de": "Alt.", "en": "Old."}
    assert wordings["2026-01"].valid_until == dt.date(2026, 5, 31), "until the day before the next version"
    assert wordings["2026-06"].valid_until is None
    assert wordings["2026-06"].sha256["en"] == hashlib.sha256(b"New.").hexdigest()
    assert wordings["1999-01"].known is False, "a version the catalog lost is said to be lost, not made up"


def test_a_withdrawal_without_a_channel_ends_every_channel_of_the_topic():
    catalog = catalog_with_two_wordings()
    ledger = [
        entry(LedgerKind.CONSENT_WITHDRAWN, T0 - dt.timedelta(days=1), topics=["events"]),  # nothing to withdraw
        entry(LedgerKind.CONSENT_GIVEN, T0, consent_version="2026-01", topics=["offers"]),
        entry(LedgerKind.CONSENT_GIVEN, T0 + dt.timedelta(hours=1), topics=["offers"], detail={"channel": "sms"}),
        entry(LedgerKind.CONSENT_WITHDRAWN, T0 + dt.timedelta(hours=2), Source.ONE_CLICK, topics=["offers"]),
    ]
    document = proof.build(subscriber(), ledger, catalog, T0)
    assert [(r.action, r.channel) for r in document.consents] == [
        ("withdrawn", "all"),
        ("given", "email"),
        ("given", "sms"),
        ("withdrawn", "all"),
    ]
    assert {(c.topic, c.channel, c.consented) for c in document.current} == {
        ("offers", "email", False),
        ("offers", "sms", False),
    }


def test_receiving_now_follows_the_profile_and_sms_only_to_the_verified_number():
    catalog = catalog_with_two_wordings()
    ledger = [
        entry(LedgerKind.CONSENT_GIVEN, T0, topics=["offers"]),
        entry(LedgerKind.CONSENT_GIVEN, T0, topics=["offers"], detail={"channel": "sms"}),
    ]
    profile = subscriber()
    profile.preferences.topics = {"offers": True}
    profile.preferences.channels = {"offers": ["email", "sms"]}
    receiving = {c.channel: c.receiving for c in proof.build(profile, ledger, catalog, T0).current}
    assert receiving == {"email": True, "sms": False}
    profile.fields = {"phone": FieldValue(value="+49 151 1", confirmed_at=T0)}
    profile.verified_phone = "+49 151 1"
    receiving = {c.channel: c.receiving for c in proof.build(profile, ledger, catalog, T0).current}
    assert receiving == {"email": True, "sms": True}


def test_a_confirmation_shows_the_email_of_its_own_request_and_the_request_before_it():
    catalog = catalog_with_two_wordings()
    first = body_record(RenderedEmail("confirm_subscription", "de", "Bitte bestätigen", "<p>a</p>", "a\n", False))
    second = body_record(RenderedEmail("confirm_subscription", "en", "Please confirm", "<p>b</p>", "b\n", False))
    request = ClientEvidence("192.0.2.1", "Form/1").as_detail()
    click = ClientEvidence("192.0.2.2", "Click/1").as_detail()
    ledger = [
        entry(
            LedgerKind.EMAIL_SENT,
            T0,
            Source.SYSTEM,
            detail={**first, **SENT, "subject": "Bitte bestätigen", "subscription_request": "r1", "message_id": "m1"},
        ),
        entry(
            LedgerKind.EMAIL_SENT,
            T0,
            Source.SYSTEM,
            detail={**second, **SENT, "subject": "Please confirm", "subscription_request": "r2", "message_id": "m2"},
        ),
        entry(
            LedgerKind.CONSENT_GIVEN,
            T0 + dt.timedelta(minutes=5),
            Source.CONFIRMATION_LINK,
            consent_version="2026-01",
            topics=["news"],
            detail={
                **click,
                **{f"request_{k}": v for k, v in request.items()},
                "requested_at": T0.isoformat(),
                "consent_requested": "2026-01",
                "subscription_request": "r1",
            },
        ),
    ]
    [record] = proof.build(subscriber(), ledger, catalog, T0).consents
    assert [m.message_id for m in record.messages] == ["m1"], "the email its link came from, not the latest"
    assert record.messages[0].subject == "Bitte bestätigen"
    assert record.request is not None
    assert record.request.at == T0
    matches = {e.role: proof.evidence_matches(e, "192.0.2.1", "Form/1") for e in record.evidence}
    assert matches == {"action": False, "request": True}
    assert any(proof.evidence_matches(e, "192.0.2.2", "Click/1") for e in record.evidence)


def test_the_kept_copy_of_an_email_opens_nothing_and_its_digest_ignores_line_endings():
    text = "Bitte bestätigen Sie: https://x.example/confirm?token=eyJhYmMi.Zx-_9.abc&next=/\n"
    assert without_tokens(text) == "Bitte bestätigen Sie: https://x.example/confirm?token=…&next=/\n"
    assert part_digest(text) == part_digest(text.replace("\n", "\r\n"))
