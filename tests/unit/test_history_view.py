"""The history page's split of the ledger into "what happened" and "emails we sent you"."""

import datetime as dt

from selfservice.domain.models import LedgerEntry, LedgerKind, Source
from selfservice.web.views import history

AT = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)


def entry(kind: LedgerKind, **detail: str) -> LedgerEntry:
    return LedgerEntry(profile_id="p" * 32, at=AT, kind=kind, source=Source.SYSTEM, detail=detail)


def test_a_review_request_shows_as_what_happened_and_as_an_email_sent(catalog):
    request = entry(LedgerKind.REVIEW_REQUESTED, subject="Sind Ihre Angaben noch aktuell?", message_id="m-1")

    page = history([request], catalog, "en", lambda text: text)

    assert page["emails"] == [request]
    assert [change["title"] for change in page["changes"]] == ["Asked to review your data"]


def test_an_ordinary_email_is_listed_only_among_the_emails_and_a_skipped_one_only_as_what_happened(catalog):
    sent = entry(LedgerKind.EMAIL_SENT, subject="Ihr Link", message_id="m-2")
    skipped = entry(LedgerKind.EMAIL_SKIPPED, subject="Newsletter", reason="paused")

    page = history([sent, skipped], catalog, "en", lambda text: text)

    assert page["emails"] == [sent]
    assert [change["title"] for change in page["changes"]] == ["Email not sent"]
