"""The history page: the ledger split into "what happened" and "emails we sent you", in the page's language."""

import datetime as dt
from pathlib import Path

from selfservice.domain.models import Change, LedgerEntry, LedgerKind, Source
from selfservice.web.render import load_translations
from selfservice.web.views import history

AT = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)


def entry(kind: LedgerKind, **detail: str) -> LedgerEntry:
    return LedgerEntry(profile_id="p" * 32, at=AT, kind=kind, source=Source.SYSTEM, detail=detail)


def test_a_review_request_shows_as_what_happened_and_as_an_email_sent(catalog):
    request = entry(LedgerKind.REVIEW_REQUESTED, subject="Sind Ihre Angaben noch aktuell?", message_id="m-1")

    page = history([request], catalog, "en", lambda text: text)

    assert page["emails"] == [{"at": AT, "subject": "Sind Ihre Angaben noch aktuell?", "lines": []}]
    assert [change["title"] for change in page["changes"]] == ["Asked to review your data"]


def test_an_ordinary_email_is_listed_only_among_the_emails_and_a_skipped_one_only_as_what_happened(catalog):
    sent = entry(LedgerKind.EMAIL_SENT, subject="Ihr Link", message_id="m-2")
    skipped = entry(LedgerKind.EMAIL_SKIPPED, subject="Newsletter", reason="paused")

    page = history([sent, skipped], catalog, "en", lambda text: text)

    assert page["emails"] == [{"at": AT, "subject": "Ihr Link", "lines": []}]
    assert [change["title"] for change in page["changes"]] == ["Email not sent"]


def german():
    return load_translations(Path(__file__).resolve().parents[2] / "templates", "de").gettext


def test_an_unsubscription_reads_in_the_pages_language_with_the_customers_reason_and_note(catalog):
    withdrawn = LedgerEntry(
        profile_id="p" * 32,
        at=AT,
        kind=LedgerKind.CONSENT_WITHDRAWN,
        source=Source.PAGE,
        consent_version="2026-01",
        topics=["offers", "news"],
        changes=[Change(field="status", before="subscribed", after="unsubscribed")],
        detail={"reason": "other", "reason_text": "Ich ziehe ins Ausland.", "evidence_hash": "x"},
    )

    [german_entry] = history([withdrawn], catalog, "de", german())["changes"]
    [english_entry] = history([withdrawn], catalog, "en", lambda text: text)["changes"]

    assert german_entry["title"] == "Einwilligung widerrufen"
    assert german_entry["source"] == "von Ihnen auf dieser Seite"
    assert german_entry["lines"] == [
        "Newsletter-Abonnement: abonniert → abgemeldet",
        "Einwilligungstext in der Fassung 2026-01",
        "Themen: Angebote, Neuigkeiten",
        "Ihr Grund: Etwas anderes",
        "Ihre Anmerkung: Ich ziehe ins Ausland.",
    ]
    assert english_entry["lines"][0] == "Newsletter subscription: subscribed → unsubscribed"
    assert not any("status" in line or "evidence" in line for line in german_entry["lines"] + english_entry["lines"])


def test_changed_values_are_shown_as_the_customer_knows_them(catalog):
    changed = LedgerEntry(
        profile_id="p" * 32,
        at=AT,
        kind=LedgerKind.PROFILE_CHANGED,
        source=Source.API,
        changes=[
            Change(field="fields.birthday", before=None, after="1988-06-14"),
            Change(field="locale", before="de", after="en"),
            Change(field="preferences.paused_until", before=None, after="2026-12-31T23:30:00+00:00"),
            Change(field="preferences.channels.offers", before=["email"], after=["email", "sms"]),
            Change(field="services.delivery_plus", before=None, after="yearly"),
        ],
    )

    [entry] = history([changed], catalog, "de", german())["changes"]

    assert entry["source"] == "über den Shop oder den Kundenservice"
    assert entry["lines"] == [
        "Geburtsdatum: – → 14. Juni 1988",
        "Sprache: Deutsch → Englisch",
        "Pause bis: – → 1. Januar 2027",
        "Kanäle für „Angebote“: E-Mail → E-Mail, SMS",
        "Lieferservice Plus: nicht gebucht → Jährlich (2 Monate gratis)",
    ]


def test_a_skipped_email_says_which_and_why_and_a_request_its_type(catalog):
    skipped = entry(LedgerKind.EMAIL_SKIPPED, subject="Sind Ihre Angaben noch aktuell?", reason="paused")
    request = entry(LedgerKind.REQUEST_SUBMITTED, request_id="r-1", type="address_change")

    page = history([skipped, request], catalog, "de", german())

    assert page["changes"][0]["lines"] == [
        "E-Mail: Sind Ihre Angaben noch aktuell?",
        "Warum: Die Newsletter waren pausiert.",
    ]
    assert page["changes"][1]["lines"] == ["Anschrift oder E-Mail-Adresse ändern"]


def test_a_reported_newsletter_is_listed_among_what_we_sent_with_its_channel_and_the_topic_chosen(catalog):
    newsletter = LedgerEntry(
        profile_id="p" * 32,
        at=AT,
        kind=LedgerKind.NEWSLETTER_SENT,
        source=Source.SYSTEM,
        topics=["offers"],
        detail={"campaign_id": "c-1", "topic": "offers", "channel": "sms", "subject": "Winter sale"},
    )

    english = history([newsletter], catalog, "en", lambda text: text)
    page = history([newsletter], catalog, "de", german())

    assert english["changes"] == [], "a newsletter is something we sent, not a change"
    assert english["emails"] == [
        {"at": AT, "subject": "Winter sale", "lines": ["Newsletter by SMS", "Because you chose “Offers”"]}
    ]
    assert page["emails"][0]["lines"] == ["Newsletter per SMS", "Weil Sie „Angebote“ gewählt haben"]
