"""Import of existing subscribers with their consent proof (``POST /api/imports``), on moto."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from typing import Any

import pytest

from devstack import patches
from selfservice.domain.models import address_hash
from tests.integration.test_api_profiles import listen_to_our_events, received_events

GIVEN = "2025-03-02T10:15:00+01:00"


@pytest.fixture(autouse=True)
def dynamodb_as_the_local_stack_runs_it(stack):
    """moto's transactions as the local stack runs them (``make run``): without the patches a
    transaction deep-copies the whole table once per operation, minutes for an import of 1,000."""
    patches.install(stack.runtime, only={"invoke", "copy", "transact_write_items", "call_action"})


def row(email: str, topics: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    consent = {"givenAt": GIVEN, "source": "newsletter form www.example.com", "version": "2026-01"}
    consent.update(extra.pop("consent", {}))
    return {"email": email, "topics": topics or ["news"], "consent": consent, **extra}


def when(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def post(stack, rows: list[dict[str, Any]]) -> dict[str, Any]:
    answer = stack.request("POST", "/api/imports", {"profiles": rows})
    assert answer.status == 200, answer.text[:500]
    return answer.json


def profile_of(stack, email: str) -> dict[str, Any]:
    answer = stack.request("GET", "/api/profiles", query={"email": email})
    assert answer.status == 200, answer.text
    return answer.json


def history_of(stack, profile_id: str) -> list[dict[str, Any]]:
    return stack.request("GET", f"/api/profiles/{profile_id}/history", query={"limit": "500"}).json["entries"]


def every_item(stack) -> list[dict[str, Any]]:
    """The whole table, page by page (tests only: the product never scans)."""
    paginator = stack.aws("dynamodb").get_paginator("scan")
    return [item for page in paginator.paginate(TableName=stack.table, ConsistentRead=True) for item in page["Items"]]


def shop_profile(stack, email: str, **body: Any) -> dict[str, Any]:
    answer = stack.request("POST", "/api/profiles", {"email": email, **body})
    assert answer.status == 201, answer.text
    return answer.json


def test_a_new_subscriber_is_imported_with_the_proof_of_their_consent_and_gets_no_email(stack):
    report = post(
        stack,
        [
            row(
                "Kim@Example.com",
                ["news", "offers"],
                locale="en",
                fields={"first_name": "Kim", "city": "Berlin"},
                consent={"evidence": {"confirmedAt": "2025-03-02T10:20:00+01:00", "ipHash": "ab12"}},
            )
        ],
    )
    assert report == {"created": 1, "updated": 0, "unchanged": 0, "rejected": []}
    profile = profile_of(stack, "kim@example.com")
    assert profile["status"] == "subscribed"
    assert profile["locale"] == "en"
    assert profile["preferences"]["topics"] == {"news": True, "offers": True}
    assert profile["consent_version"] == "2026-01"
    assert profile["fields"]["first_name"]["value"] == "Kim"
    assert when(profile["fields"]["city"]["confirmed_at"]) == when(GIVEN)
    entries = history_of(stack, profile["id"])
    consent = next(entry for entry in entries if entry["kind"] == "consent_given")
    assert consent["source"] == "import"
    assert consent["topics"] == ["news", "offers"]
    assert consent["consent_version"] == "2026-01"
    assert when(consent["at"]) == when(GIVEN)
    assert consent["detail"]["imported"] == "yes"
    assert consent["detail"]["consent_source"] == "newsletter form www.example.com"
    assert consent["detail"]["evidence_confirmedAt"] == "2025-03-02T10:20:00+01:00"
    assert consent["detail"]["evidence_ipHash"] == "ab12"
    # History stays in time order: the consent given in 2025 comes after the profile created now.
    assert [entry["kind"] for entry in entries] == ["profile_created", "consent_given"]
    assert stack.sent_emails() == []
    # The consent proof shows the imported consent with the wording it was given under.
    proof = stack.request("GET", f"/api/profiles/{profile['id']}/consent-proof")
    assert proof.status == 200, proof.text[:500]
    assert "2026-01" in proof.text
    assert "import" in proof.text


def test_the_same_import_twice_changes_nothing_the_second_time(stack):
    shop_profile(stack, "existing@example.com")
    rows = [row("new@example.com"), row("existing@example.com", ["events"])]
    assert post(stack, rows) == {"created": 1, "updated": 1, "unchanged": 0, "rejected": []}
    before = every_item(stack)
    assert post(stack, rows) == {"created": 0, "updated": 0, "unchanged": 2, "rejected": []}
    assert sorted(map(json.dumps, every_item(stack))) == sorted(map(json.dumps, before))


def test_rows_with_wrong_values_are_rejected_one_by_one_and_the_rest_imports(stack):
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).isoformat()
    rows = [
        row("ok@example.com"),
        row("not an address"),
        row("topic@example.com", ["news", "gossip", "partner_offers"]),
        row("locale@example.com", locale="fr"),
        {"email": "noconsent@example.com", "topics": ["news"]},
        row("future@example.com", consent={"givenAt": future}),
        row("wording@example.com", consent={"version": "1999-01"}),
        row("extra@example.com", shoe_size=42),
        row("field@example.com", fields={"birthday": "tomorrow", "favourite_colour": "blue"}),
        row("OK@example.com"),
    ]
    report = post(stack, rows)
    assert (report["created"], report["updated"], report["unchanged"]) == (1, 0, 0)
    problems = {rejected["index"]: rejected["problems"] for rejected in report["rejected"]}
    assert sorted(problems) == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert problems[1] == [{"field": "email", "reason": "this is not a valid email address"}]
    assert [p["reason"] for p in problems[2]] == ["unknown topic gossip", "topic partner_offers is not offered"]
    assert problems[3][0]["field"] == "locale"
    assert problems[4] == [{"field": "consent", "reason": "Field required"}]
    assert problems[5] == [{"field": "consent.givenAt", "reason": "must not be in the future"}]
    assert problems[6][0]["field"] == "consent.version"
    assert problems[7][0]["field"] == "shoe_size"
    assert {p["field"] for p in problems[8]} == {"fields.birthday", "fields.favourite_colour"}
    assert problems[9] == [{"field": "email", "reason": "the same address is in row 0"}]
    assert stack.request("GET", "/api/profiles", query={"email": "topic@example.com"}).status == 404


def test_an_import_never_overrides_an_unsubscribe_a_suppression_or_a_newer_withdrawal(stack):
    # Unsubscribed on our side.
    gone = shop_profile(stack, "gone@example.com")
    post(stack, [row("gone@example.com", ["news"])])
    stack.request("PATCH", f"/api/profiles/{gone['id']}", {"preferences": {"topics": {"news": False}}})
    assert profile_of(stack, "gone@example.com")["status"] == "unsubscribed"
    # Bounced: on the suppression list (no profile needed).
    from selfservice import bootstrap

    repository = bootstrap.adapters().repository
    repository.suppress(address_hash("bounced@example.com"), "hard_bounce", dt.datetime.now(dt.UTC))
    # A subscriber who switched "offers" off after the consent the import brings, and never had "events".
    kept = shop_profile(stack, "kept@example.com")
    post(stack, [row("kept@example.com", ["news", "offers"])])
    stack.request("PATCH", f"/api/profiles/{kept['id']}", {"preferences": {"topics": {"offers": False}}})

    report = post(
        stack,
        [
            row("gone@example.com", ["news", "offers"], consent={"givenAt": "2026-06-01T00:00:00Z"}),
            row("bounced@example.com"),
            row("kept@example.com", ["offers", "events"]),
        ],
    )
    assert report == {"created": 0, "updated": 1, "unchanged": 2, "rejected": []}
    assert profile_of(stack, "gone@example.com")["status"] == "unsubscribed"
    assert stack.request("GET", "/api/profiles", query={"email": "bounced@example.com"}).status == 404
    topics = profile_of(stack, "kept@example.com")["preferences"]["topics"]
    assert topics == {"news": True, "offers": False, "events": True}


def test_a_shop_or_pending_profile_becomes_a_subscriber_of_exactly_the_imported_topics(stack):
    pending = shop_profile(stack, "pending@example.com", subscribe=["offers"])
    confirmation = stack.sent_emails()
    report = post(stack, [row("pending@example.com", ["news"], fields={"first_name": "Pat"})])
    assert report["updated"] == 1
    profile = profile_of(stack, "pending@example.com")
    assert profile["id"] == pending["id"]
    assert profile["status"] == "subscribed"
    assert profile["preferences"]["topics"] == {"news": True, "offers": False}
    assert profile["fields"]["first_name"]["value"] == "Pat"
    kinds = Counter(entry["kind"] for entry in history_of(stack, pending["id"]))
    assert kinds == {"profile_created": 1, "email_sent": 1, "profile_changed": 1, "consent_given": 1}
    assert stack.sent_emails() == confirmation  # the import itself sent nothing
    # The email claim no longer expires with the pending profile.
    claim = next(item for item in stack.items() if item["pk"]["S"] == "EMAIL#pending@example.com")
    assert "expires_at" not in claim


def test_more_than_a_thousand_rows_or_a_body_that_is_no_list_is_refused_whole(stack):
    too_many = stack.request("POST", "/api/imports", {"profiles": [row(f"p{i}@example.com") for i in range(1001)]})
    assert too_many.status == 422
    assert too_many.json["problems"][0]["field"] == "body.profiles"
    assert stack.request("POST", "/api/imports", {"profiles": "all"}).status == 422
    assert stack.request("POST", "/api/imports", raw="{not json").status == 400
    assert stack.request("POST", "/api/imports", {"profiles": [row("a@example.com")], "dryRun": True}).status == 422
    assert stack.items() == []


def test_a_thousand_rows_of_new_existing_unsubscribed_and_invalid_subscribers(stack):
    """The issue's case: 1,000 rows in one call, the right counts, ledger entries and events, no email."""
    from selfservice import bootstrap

    repository = bootstrap.adapters().repository
    # 100 profiles the shop created (no consent yet) and 100 subscribers of "news" (imported before).
    for n in range(100):
        shop_profile(stack, f"shop{n}@example.com")
    post(stack, [row(f"sub{n}@example.com", ["news"]) for n in range(100)])
    # 50 who unsubscribed since, 50 whose address bounced (suppression list only).
    for n in range(50):
        profile = profile_of(stack, f"sub{n}@example.com")
        stack.request("PATCH", f"/api/profiles/{profile['id']}", {"preferences": {"topics": {"news": False}}})
        repository.suppress(address_hash(f"bounced{n}@example.com"), "hard_bounce", dt.datetime.now(dt.UTC))
    sqs, queue_url = listen_to_our_events(stack)
    emails_before = len(stack.sent_emails())

    rows = (
        [row(f"new{n}@example.com", ["news", "events"], fields={"first_name": f"N{n}"}) for n in range(600)]
        + [row(f"shop{n}@example.com", ["offers"]) for n in range(100)]  # existing, not subscribed: updated
        + [row(f"sub{n}@example.com", ["news", "offers"]) for n in range(50, 100)]  # existing: +offers
        + [row(f"sub{n}@example.com", ["news", "offers"]) for n in range(50)]  # unsubscribed: unchanged
        + [row(f"bounced{n}@example.com") for n in range(50)]  # suppressed: unchanged
        + [row(f"bad{n}@", ["news"]) for n in range(100)]  # no address: rejected
        + [row(f"late{n}@example.com", ["gossip"]) for n in range(50)]  # unknown topic: rejected
    )
    assert len(rows) == 1000
    report = post(stack, rows)

    assert (report["created"], report["updated"], report["unchanged"]) == (600, 150, 100)
    assert [rejected["index"] for rejected in report["rejected"]] == list(range(850, 1000))
    assert {p["field"] for rejected in report["rejected"][:100] for p in rejected["problems"]} == {"email"}
    assert {p["reason"] for rejected in report["rejected"][100:] for p in rejected["problems"]} == {
        "unknown topic gossip"
    }
    assert len(stack.sent_emails()) == emails_before  # an import never sends an email

    items = [item for item in every_item(stack) if item.get("item_type", {}).get("S") == "ledger"]
    imported = [item for item in items if item["source"]["S"] == "import" and item["kind"]["S"] == "consent_given"]
    # 100 from the first import, then 600 new, 100 shop profiles, 50 subscribers given "offers".
    assert len(imported) == 100 + 600 + 100 + 50
    assert all(item["detail"]["M"]["imported"]["S"] == "yes" for item in imported)
    assert profile_of(stack, "shop7@example.com")["preferences"]["topics"] == {"offers": True}
    assert profile_of(stack, "sub7@example.com")["status"] == "unsubscribed"
    assert profile_of(stack, "sub77@example.com")["preferences"]["topics"] == {"news": True, "offers": True}

    _all, events = received_events(sqs, queue_url)
    kinds = Counter((event["detail-type"], event["detail"].get("source")) for event in events)
    assert kinds == {("Subscribed", "import"): 700, ("ProfileChanged", "import"): 150}
    assert all("@" not in json.dumps(event["detail"]) for event in events)

    again = post(stack, rows)
    assert (again["created"], again["updated"], again["unchanged"], len(again["rejected"])) == (0, 0, 850, 150)
