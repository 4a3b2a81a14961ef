"""Audiences and reported newsletters on the template's resources in moto, with the real handlers:
the paged API, the export state machine writing to S3, and NewsletterSent from the bus through the
queue to the recording function.

What a sending system notices: exactly who may receive a topic on a channel at a send time; the
export file holds the same people as the pages; what it reports shows in each customer's history
and pushes them out of the next audience once their frequency is reached. What a customer
notices: the newsletter on their history page, with the topic they chose.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

import pytest
import requests

from selfservice import bootstrap
from selfservice.domain.audience import AUDIENCE_SHARD_COUNT
from selfservice.domain.models import (
    FieldValue,
    LedgerEntry,
    LedgerKind,
    Preferences,
    Profile,
    Source,
    SubscriptionStatus,
    address_hash,
)
from selfservice.domain.sms import sms_receiving_topics
from selfservice.tokens import Purpose
from tests.conftest import Stack
from tests.integration.conftest import StateMachineStack

EXPORT = "AudienceExportStateMachine"
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
AT = NOW + dt.timedelta(days=2)
"""The send time asked for: two days ahead."""
MOBILE = "+4915123456789"


def subscriber(name: str, **changes: Any) -> Profile:
    """A confirmed subscriber of "offers" by email, weekly (at most 5 messages in 30 days)."""
    profile = Profile(
        id=hashlib.md5(name.encode()).hexdigest(),
        email=f"{name}@example.com",
        locale="en",
        status=SubscriptionStatus.SUBSCRIBED,
        consent_version="2026-11-01",
        fields={"first_name": FieldValue(value=name.title(), confirmed_at=NOW)},
        preferences=Preferences(topics={"offers": True}, frequency="weekly"),
        created_at=NOW - dt.timedelta(days=100),
        updated_at=NOW - dt.timedelta(days=100),
        subscribed_at=NOW - dt.timedelta(days=100),
    )
    return profile.model_copy(update=changes)


def with_mobile(profile: Profile, channels: list[str], *, verified: bool) -> Profile:
    fields = {**profile.fields, "phone": FieldValue(value=MOBILE, confirmed_at=NOW)}
    preferences = profile.preferences.model_copy(update={"channels": {"offers": channels}})
    return profile.model_copy(
        update={
            "fields": fields,
            "preferences": preferences,
            "verified_phone": MOBILE if verified else None,
            "sms_consent_version": "2026-11-01" if verified else None,
        }
    )


def store(*profiles: Profile) -> None:
    """Written by the repository with the consent entries that prove their topics (and SMS at the number)."""
    repository = bootstrap.wiring().repository
    for profile in profiles:
        consents = [
            LedgerEntry(
                profile_id=profile.id,
                at=profile.created_at,
                kind=LedgerKind.CONSENT_GIVEN,
                source=Source.CONFIRMATION_LINK,
                consent_version=profile.consent_version,
                topics=profile.preferences.subscribed_topics(),
            )
        ]
        if sms_topics := sms_receiving_topics(profile):
            consents.append(
                LedgerEntry(
                    profile_id=profile.id,
                    at=profile.created_at,
                    kind=LedgerKind.CONSENT_GIVEN,
                    source=Source.PAGE,
                    consent_version=profile.sms_consent_version,
                    topics=sms_topics,
                    detail={"channel": "sms", "phone": profile.verified_phone or ""},
                )
            )
        repository.create(profile, consents if profile.status == SubscriptionStatus.SUBSCRIBED else [])


def report(stack: Stack, campaign: str, profile_ids: list[str], sent_at: dt.datetime, **overrides: Any) -> None:
    """A sending system's NewsletterSent on the template's bus."""
    detail = {
        "campaignId": campaign,
        "topic": "offers",
        "channel": "email",
        "subject": f"Offers {campaign}",
        "sentAt": sent_at.isoformat(),
        "profileIds": profile_ids,
        **overrides,
    }
    entry = {
        "EventBusName": stack.resources.refs["EventBus"],
        "Source": "newsletter",
        "DetailType": "NewsletterSent",
        "Detail": json.dumps(detail),
    }
    answer = stack.aws("events").put_events(Entries=[entry])
    assert answer["FailedEntryCount"] == 0, answer
    stack.runtime.drain()


def audience(stack: Stack, topic: str = "offers", channel: str = "email", at: dt.datetime = AT, limit: int = 2):
    """Every item of the paged audience, page after page, and how many pages it took."""
    items: list[dict[str, Any]] = []
    query = {"channel": channel, "at": at.isoformat(), "limit": str(limit)}
    pages = 0
    while True:
        answer = stack.request("GET", f"/api/topics/{topic}/audience", query=query)
        assert answer.status == 200, answer.text
        pages += 1
        items += answer.json["items"]
        if answer.json["next"] is None:
            return items, pages
        query["cursor"] = answer.json["next"]


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [item["profileId"] for item in items]


@pytest.fixture
def population(stack: Stack) -> dict[str, Profile]:
    """One profile per rule that keeps it out, and the ones each rule must not keep out."""
    people = {
        "anna": subscriber("anna"),
        "ben": subscriber("ben", preferences=Preferences(topics={"offers": True, "news": True}, frequency="weekly")),
        "no_consent": subscriber("noconsent", preferences=Preferences(topics={"news": True}, frequency="weekly")),
        "unconfirmed": subscriber("unconfirmed", status=SubscriptionStatus.PENDING),
        "suppressed": subscriber("suppressed", suppressed=True),
        "listed": subscriber("listed"),
        "paused": subscriber(
            "paused", preferences=Preferences(topics={"offers": True}, paused_until=AT + dt.timedelta(days=1))
        ),
        "pause_over": subscriber(
            "pauseover", preferences=Preferences(topics={"offers": True}, paused_until=AT - dt.timedelta(hours=1))
        ),
        "sms_only": with_mobile(subscriber("smsonly"), ["sms"], verified=True),
        "sms_unverified": with_mobile(subscriber("smsunverified"), ["email", "sms"], verified=False),
        "frequency": subscriber("frequency"),
        "under_cap": subscriber("undercap"),
    }
    store(*people.values())
    repository = bootstrap.wiring().repository
    repository.suppress(address_hash(people["listed"].email), "hard_bounce", NOW)
    # Five newsletters in the 30 days before the send time reach the weekly cap; four do not.
    for number in range(5):
        recipients = [people["frequency"].id] + ([people["under_cap"].id] if number < 4 else [])
        report(stack, f"winter-{number}", recipients, NOW - dt.timedelta(days=number + 1))
    return people


def test_each_rule_keeps_its_profile_out_and_everyone_else_is_in(stack: Stack, machines: StateMachineStack, population):
    people = population
    items, pages = audience(stack)

    expected = {people[name].id for name in ("anna", "ben", "pause_over", "sms_unverified", "under_cap")}
    assert sorted(ids(items)) == sorted(expected)
    assert len(ids(items)) == len(set(ids(items))), "nobody twice"
    assert pages >= 3, "more items than a page: the cursor carries on"
    anna = next(item for item in items if item["profileId"] == people["anna"].id)
    assert anna == {"profileId": people["anna"].id, "address": "anna@example.com", "locale": "en",
                    "fields": {"first_name": "Anna"}}  # fmt: skip

    sms, _pages = audience(stack, channel="sms")
    assert sms == [{"profileId": people["sms_only"].id, "address": MOBILE, "locale": "en",
                    "fields": {"first_name": "Smsonly", "phone": MOBILE}}]  # fmt: skip

    # 31 days later the five reported newsletters have left the window: the frequency allows one more.
    later, _pages = audience(stack, at=NOW + dt.timedelta(days=31), limit=100)
    assert people["frequency"].id in ids(later)
    assert people["paused"].id in ids(later), "the pause is over by then"


def test_the_export_file_holds_exactly_the_paged_audience(stack: Stack, machines: StateMachineStack, population):
    pages, _count = audience(stack, limit=3)

    started = stack.request(
        "POST", "/api/audience-exports", {"topic": "offers", "channel": "email", "at": AT.isoformat()}
    )
    assert started.status == 202, started.text
    export_id = started.json["id"]
    assert started.headers["Location"] == f"/api/audience-exports/{export_id}"
    [execution] = machines.wait_all(EXPORT)
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)

    status = stack.request("GET", f"/api/audience-exports/{export_id}")
    assert status.status == 200
    assert status.json["status"] == "succeeded"
    assert status.json["count"] == len(pages)
    link = status.json["url"]
    assert "X-Amz-Expires=900" in link, "a time-limited link"
    assert "X-Amz-Signature=" in link, "a presigned link"
    body = requests.get(link, timeout=10).text
    lines = [json.loads(line) for line in body.splitlines()]
    assert lines == pages, "the same items in the same order as the pages"
    bucket = stack.resources.refs["AudienceExportBucket"]
    kept = [item["Key"] for item in stack.aws("s3").list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert kept == [f"exports/{export_id}.jsonl"], "the parts are gone"


def test_an_export_for_an_unknown_topic_or_channel_is_refused_and_starts_nothing(stack: Stack, machines):
    assert stack.request("POST", "/api/audience-exports", {"topic": "nope", "channel": "email"}).status == 404
    refused = stack.request("POST", "/api/audience-exports", {"topic": "news", "channel": "sms"})
    assert refused.status == 422
    assert refused.json["problems"] == [{"field": "channel", "reason": "sms is not offered for this topic"}]
    assert stack.request("POST", "/api/audience-exports", {"topic": "news", "channel": "fax"}).status == 422
    assert (
        stack.request("POST", "/api/audience-exports", {"topic": "news", "channel": "email", "at": "tomorrow"}).status
        == 422
    )
    assert machines.executions(EXPORT) == []
    assert stack.request("GET", f"/api/audience-exports/{'0' * 32}").status == 404


def test_bad_audience_queries_are_answered_with_what_is_wrong(stack: Stack):
    base = "/api/topics/offers/audience"
    assert stack.request("GET", "/api/topics/nope/audience", query={"channel": "email"}).status == 404
    assert stack.request("GET", "/api/topics/partner_offers/audience", query={"channel": "email"}).status == 404
    assert stack.request("GET", base).status == 422, "the channel is required"
    not_offered = stack.request("GET", "/api/topics/news/audience", query={"channel": "sms"})
    assert not_offered.json["problems"] == [{"field": "query.channel", "reason": "sms is not offered for this topic"}]
    wrong_time = stack.request("GET", base, query={"channel": "email", "at": "2026-12-24"})
    assert wrong_time.status == 422
    assert wrong_time.json["problems"][0]["field"] == "query.at"
    for cursor in ("garbage", "eyJhIjoiYiJ9", "eyJhdWRpZW5jZV9zaGFyZCI6IkFVRElFTkNFIzk5In0"):
        answer = stack.request("GET", base, query={"channel": "email", "cursor": cursor})
        assert answer.status == 422, cursor
        assert answer.json["problems"] == [{"field": "cursor", "reason": "is not a cursor of this list"}]
    assert stack.request("GET", base, query={"channel": "email", "limit": "0"}).status == 422


def test_an_empty_audience_is_one_page_and_an_empty_file(stack: Stack, machines: StateMachineStack):
    items, pages = audience(stack, limit=1000)
    assert (items, pages) == ([], 1), f"{AUDIENCE_SHARD_COUNT} empty shards within one page's reads"
    export_id = stack.request("POST", "/api/audience-exports", {"topic": "events", "channel": "sms"}).json["id"]
    machines.wait_all(EXPORT)
    status = stack.request("GET", f"/api/audience-exports/{export_id}").json
    assert (status["status"], status["count"]) == ("succeeded", 0)
    assert requests.get(status["url"], timeout=10).text == ""


# --- reported newsletters -----------------------------------------------------------------------------


def history_page(stack: Stack, profile: Profile) -> str:
    link = bootstrap.wiring().link(profile, Purpose.MANAGE, "/link")
    answer = stack.client.get(link.replace("http://127.0.0.1:3000", ""))
    assert answer.status_code == 303
    page = stack.client.get("/history")
    assert page.status_code == 200
    return page.get_data(as_text=True)


def test_a_reported_newsletter_shows_in_the_history_and_a_duplicate_changes_nothing(stack: Stack, machines):
    anna, ben = subscriber("anna"), subscriber("ben")
    store(anna, ben)
    sent_at = NOW - dt.timedelta(hours=3)

    report(stack, "advent-1", [anna.id, ben.id, "f" * 32], sent_at, subject="Advent offers: 20 % off")
    report(stack, "advent-1", [anna.id, ben.id, "f" * 32], sent_at, subject="Advent offers: 20 % off")

    html = history_page(stack, anna)
    assert html.count("Advent offers: 20 % off") == 1
    assert "Because you chose “Offers”" in html
    assert "Newsletter by Email" in html
    repository = bootstrap.wiring().repository
    for profile in (anna, ben):
        entries = [e for e in repository.history(profile.id) if e.kind == LedgerKind.NEWSLETTER_SENT]
        assert [(e.detail["campaign_id"], e.detail["channel"], e.at) for e in entries] == [
            ("advent-1", "email", sent_at)
        ]
        assert repository.get(profile.id).marketing_emails_at == [sent_at], "counted once"
    queue = stack.resources.refs["NewsletterSentDeadLetterQueue"]
    assert stack.aws("sqs").receive_message(QueueUrl=queue).get("Messages") is None


def test_reported_sends_push_a_customer_out_of_the_next_audience_at_their_frequency(stack: Stack, machines):
    kim = subscriber("kim", preferences=Preferences(topics={"offers": True}, frequency="monthly"))
    store(kim)
    assert ids(audience(stack, at=NOW)[0]) == [kim.id]

    report(stack, "december", [kim.id], NOW - dt.timedelta(minutes=5))

    assert audience(stack, at=NOW)[0] == [], "monthly: one message in 30 days"
    assert ids(audience(stack, at=NOW + dt.timedelta(days=30))[0]) == [kim.id]


def test_a_malformed_report_ends_in_the_dead_letter_queue_and_the_others_are_recorded(stack: Stack, machines):
    kim = subscriber("kim")
    store(kim)
    queue, dead_letters = (
        stack.resources.refs[name] for name in ("NewsletterSentQueue", "NewsletterSentDeadLetterQueue")
    )

    report(stack, "broken", [kim.id], NOW, channel="fax")  # not a channel: fails the model
    # Each later report is polled with what is still in the queue (as Lambda polls it): the malformed
    # one fails again each time and, after the queue's three receives, moves to the dead-letter queue.
    for number in range(4):
        report(stack, f"ok-{number}", [kim.id], NOW - dt.timedelta(hours=number))

    sqs = stack.aws("sqs")
    [kept] = sqs.receive_message(QueueUrl=dead_letters, MaxNumberOfMessages=10)["Messages"]
    assert json.loads(kept["Body"])["detail"]["campaignId"] == "broken"
    assert sqs.receive_message(QueueUrl=queue).get("Messages") is None, "nothing else is left"
    entries = [e for e in bootstrap.wiring().repository.history(kim.id) if e.kind == LedgerKind.NEWSLETTER_SENT]
    assert sorted(e.detail["campaign_id"] for e in entries) == ["ok-0", "ok-1", "ok-2", "ok-3"], "each once"
    assert len(bootstrap.wiring().repository.get(kim.id).marketing_emails_at) == 4


def test_one_report_for_500_recipients_is_recorded_and_the_unknown_ids_are_counted(stack: Stack, machines, capsys):
    people = [subscriber(f"reader{number}") for number in range(500)]
    store(*people[:450])  # fifty ids nobody knows
    capsys.readouterr()
    report(stack, "big", [person.id for person in people], NOW - dt.timedelta(hours=1))

    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    counted = [(m["NewsletterRecipientsRecorded"], m["NewsletterRecipientsUnknown"]) for m in metrics]
    assert counted == [([450.0], [50.0])], "the CloudWatch metrics (EMF) of the one invocation"

    repository = bootstrap.wiring().repository
    recorded = [person for person in people[:450] if repository.get(person.id).marketing_emails_at]
    assert len(recorded) == 450
    assert len([e for e in repository.history(people[0].id) if e.kind == LedgerKind.NEWSLETTER_SENT]) == 1


def test_profiles_stored_before_the_index_enter_the_audience_with_the_reindex_pass(stack: Stack):
    """A stack updated to this release keeps its profiles; the one-off pass puts them into the index."""
    from selfservice.reindex import reindex_all

    before = [subscriber(f"early{n}") for n in range(7)]
    store(*before)
    dynamodb = stack.aws("dynamodb")
    for profile in before:  # as a release without the Audience index stored them
        dynamodb.update_item(
            TableName=stack.table,
            Key={"pk": {"S": f"PROFILE#{profile.id}"}, "sk": {"S": "PROFILE"}},
            UpdateExpression="REMOVE audience_shard",
        )
    assert ids(audience(stack, limit=100)[0]) == []

    result = reindex_all(bootstrap.wiring().repository, segments=3)
    assert (result.written, result.changed_meanwhile) == (7, 0)
    assert sorted(ids(audience(stack, limit=100)[0])) == sorted(p.id for p in before)
    stored = stack.request("GET", f"/api/profiles/{before[0].id}").json
    assert stored["version"] == before[0].version, "written as it was: nothing about the profile changed"
