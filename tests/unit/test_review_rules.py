"""Review campaign rules: when a profile needs a review, and when a review email may go out."""

import datetime as dt
from types import SimpleNamespace

import pytest

from selfservice.campaigns import MalformedEvent, ReviewCampaigns, parse_trigger
from selfservice.domain.models import FieldValue, Preferences, SubscriptionStatus
from selfservice.domain.review import (
    ReviewNeed,
    SkipReason,
    claim_review_email,
    claimed_by,
    next_review_at,
    recent_marketing_emails,
    release_review_claim,
    review_email_skip_reason,
    review_need,
)
from selfservice.settings import Settings

DAY = dt.timedelta(days=1)


@pytest.fixture
def due(profile, now):
    """A confirmed subscriber whose last review was 200 days ago (the interval is 182 days)."""
    profile.last_reviewed_at = now - 200 * DAY
    return profile


# --- what a review asks for ---------------------------------------------------------------------


def test_a_fresh_complete_profile_needs_no_review(profile, catalog, now):
    assert review_need(profile, catalog, now) == ReviewNeed()
    assert not review_need(profile, catalog, now).due


def test_missing_required_and_stale_fields_lead_the_review(profile, catalog, now):
    del profile.fields["last_name"]
    profile.fields["street"] = FieldValue(value="Hauptstr. 1", confirmed_at=now - 400 * DAY)
    profile.fields["city"] = FieldValue(value="Berlin", confirmed_at=now - 366 * DAY)
    need = review_need(profile, catalog, now)
    assert need.missing == ("last_name",)
    assert need.stale == ("street", "city")
    assert need.focus == ["last_name", "street", "city"]
    assert not need.overdue
    assert need.due


def test_a_profile_not_reviewed_for_the_interval_is_overdue(profile, catalog, now):
    profile.last_reviewed_at = now - (catalog.review.interval_days + 1) * DAY
    need = review_need(profile, catalog, now)
    assert need.overdue
    assert need.focus == []
    assert need.due
    profile.last_reviewed_at = now - (catalog.review.interval_days - 1) * DAY
    assert not review_need(profile, catalog, now).due


# --- who may get a review email -----------------------------------------------------------------


def test_an_eligible_due_profile_may_be_mailed(due, catalog, now):
    assert review_email_skip_reason(due, catalog, now) is None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda p, now: setattr(p, "suppressed", True), SkipReason.SUPPRESSED),
        (lambda p, now: setattr(p, "status", SubscriptionStatus.PENDING), SkipReason.UNCONFIRMED),
        (lambda p, now: setattr(p, "status", SubscriptionStatus.UNSUBSCRIBED), SkipReason.NOT_SUBSCRIBED),
        (lambda p, now: setattr(p, "status", SubscriptionStatus.NOT_SUBSCRIBED), SkipReason.NOT_SUBSCRIBED),
        (lambda p, now: setattr(p.preferences, "paused_until", now + 7 * DAY), SkipReason.PAUSED),
        (lambda p, now: setattr(p, "last_review_email_at", now - 29 * DAY), SkipReason.COOLDOWN),
        (lambda p, now: setattr(p, "last_reviewed_at", now - 10 * DAY), SkipReason.NOT_DUE),
    ],
    ids=["suppressed", "unconfirmed", "unsubscribed", "never subscribed", "paused", "cooldown", "not due"],
)
def test_each_reason_to_skip(due, catalog, now, change, reason):
    change(due, now)
    assert review_email_skip_reason(due, catalog, now) == reason


def test_an_address_on_the_suppression_list_is_skipped(due, catalog, now):
    assert review_email_skip_reason(due, catalog, now, address_suppressed=True) == SkipReason.SUPPRESSED


def test_the_cooldown_ends(due, catalog, now):
    due.last_review_email_at = now - (catalog.review.cooldown_days + 1) * DAY
    assert review_email_skip_reason(due, catalog, now) is None


def test_a_pause_that_ended_does_not_block(due, catalog, now):
    due.preferences.paused_until = now - DAY
    assert review_email_skip_reason(due, catalog, now) is None


@pytest.mark.parametrize(
    "preferences",
    [
        Preferences(topics={"offers": True}, channels={"offers": ["sms"]}),
        Preferences(topics={"partner_offers": True}),  # hidden: nothing is sent on it
        Preferences(topics={"offers": False}),
        Preferences(),
    ],
    ids=["sms only", "only a hidden topic", "topic switched off", "no topics"],
)
def test_without_an_email_topic_there_is_no_email(due, catalog, now, preferences):
    due.preferences = preferences
    assert review_email_skip_reason(due, catalog, now) == SkipReason.NO_EMAIL_CHANNEL
    assert next_review_at(due, catalog) is None, "a profile that cannot be mailed must not sit in the index"


def test_the_chosen_frequency_caps_marketing_emails(due, catalog, now):
    due.preferences.frequency = "monthly"  # at most one email in 30 days
    due.marketing_emails_at = [now - 3 * DAY]
    assert review_email_skip_reason(due, catalog, now) == SkipReason.FREQUENCY_CAP
    due.marketing_emails_at = [now - 31 * DAY]
    assert review_email_skip_reason(due, catalog, now) is None
    due.preferences.frequency = "weekly"  # at most five
    due.marketing_emails_at = [now - n * DAY for n in (1, 5, 9, 13, 17)]
    assert review_email_skip_reason(due, catalog, now) == SkipReason.FREQUENCY_CAP
    due.marketing_emails_at = due.marketing_emails_at[:4]
    assert review_email_skip_reason(due, catalog, now) is None


# --- the index follows the rules ----------------------------------------------------------------


def test_a_pause_or_a_full_frequency_postpones_the_next_review(due, catalog, now):
    assert next_review_at(due, catalog) <= now
    due.preferences.paused_until = now + 14 * DAY
    assert next_review_at(due, catalog) == now + 14 * DAY
    due.preferences.paused_until = None
    due.preferences.frequency = "monthly"
    due.marketing_emails_at = [now - 10 * DAY]
    assert next_review_at(due, catalog) == now + 20 * DAY


def test_claiming_a_review_email_starts_the_cooldown(due, catalog, now):
    due.marketing_emails_at = [now - 40 * DAY, now - 2 * DAY]
    mailed = claim_review_email(due, now, "periodic:run-1")
    assert mailed.last_review_email_at == now
    assert mailed.marketing_emails_at == [now - 2 * DAY, now]
    assert claimed_by(mailed, "periodic:run-1")
    assert not claimed_by(mailed, "periodic:run-2")
    assert mailed.version == due.version + 1
    assert due.last_review_email_at is None, "the input profile is not changed"
    assert review_email_skip_reason(mailed, catalog, now + DAY) == SkipReason.COOLDOWN
    assert next_review_at(mailed, catalog) == now + catalog.review.cooldown_days * DAY
    assert recent_marketing_emails(mailed, now + 29 * DAY) == [now]


def test_releasing_a_claim_makes_the_customer_due_again_and_keeps_their_own_changes(due, catalog, now):
    claimed = claim_review_email(due, now, "event:PurchaseCompleted:o-1")
    edited = claimed.model_copy(deep=True)
    edited.preferences.frequency = "monthly"  # the customer saved meanwhile
    edited.version += 1
    released = release_review_claim(edited, due)
    assert released.last_review_email_at is None
    assert released.marketing_emails_at == due.marketing_emails_at
    assert released.last_review_campaign is None
    assert released.preferences.frequency == "monthly"
    assert released.version == edited.version + 1
    assert review_email_skip_reason(released, catalog, now) is None


# --- events: validation and the wait ------------------------------------------------------------


class _DeadLetters:
    def __init__(self) -> None:
        self.kept: list[object] = []

    def keep(self, event: object, problems: list[str]) -> bool:
        self.kept.append(event)
        return True


def _campaigns(catalog, now, delay_hours=None):
    settings = Settings(review_event_delay_hours=delay_hours)
    profiles = SimpleNamespace(settings=settings, catalog=catalog)
    return ReviewCampaigns(profiles=profiles, runs=None, dead_letters=_DeadLetters(), clock=lambda: now)


def _event(detail, source="shop", detail_type="PurchaseCompleted"):
    return {
        "version": "0",
        "id": "e-1",
        "source": source,
        "detail-type": detail_type,
        "account": "123456789012",
        "time": "2026-11-20T10:00:00Z",
        "region": "eu-central-1",
        "resources": [],
        "detail": detail,
    }


def test_an_event_waits_until_its_delay_has_passed(catalog, now):
    campaigns = _campaigns(catalog, now)
    occurred = now - dt.timedelta(hours=1)
    plan = campaigns.plan_event(
        _event({"orderId": " o-1 ", "email": "Anna@Example.com", "occurredAt": occurred.isoformat()})
    )
    delay = dt.timedelta(hours=catalog.review.event_delay_hours)
    assert plan["waitUntil"] == (occurred + delay).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert plan["detailType"] == "PurchaseCompleted"
    assert plan["eventKey"] == "o-1"
    assert plan["email"] == "Anna@example.com"


def test_a_late_event_does_not_wait_again(catalog, now):
    campaigns = _campaigns(catalog, now, delay_hours=48)
    detail = {"requestId": "r-7", "email": "anna@example.com", "occurredAt": "2026-11-01T08:00:00+01:00"}
    plan = campaigns.plan_event(_event(detail, "customer-service", "ServiceRequestClosed"))
    assert plan["waitUntil"] == now.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert plan["eventKey"] == "r-7"


@pytest.mark.parametrize(
    ("event", "problem"),
    [
        (_event({"orderId": "o-1", "occurredAt": "2026-11-20T10:00:00Z"}), "detail.email"),
        (_event({"orderId": "o-1", "email": "a@example.com", "occurredAt": "2026-11-20"}), "detail.occurredAt"),
        (_event({"orderId": "o-1", "email": "a@example.com", "occurredAt": "2026-11-20T10:00:00"}), "occurredAt"),
        (_event({"orderId": "", "email": "a@example.com", "occurredAt": "2026-11-20T10:00:00Z"}), "detail.orderId"),
        (_event({"orderId": "o-1", "email": "no address", "occurredAt": "2026-11-20T10:00:00Z"}), "detail.email"),
        (_event({"orderId": "o-1", "email": "a@example.com", "occurredAt": "2030-01-01T00:00:00Z"}), "future"),
        (_event({"requestId": "r-1", "email": "a@example.com", "occurredAt": "2026-11-20T10:00:00Z"}), "orderId"),
        ({"detail": {"email": "a@example.com"}}, "source"),
        ("not an event", "EventBridgeModel"),
    ],
    ids=[
        "no email",
        "date only",
        "no time zone",
        "empty order id",
        "bad email",
        "future",
        "wrong type",
        "no envelope",
        "a string",
    ],
)
def test_a_malformed_event_is_refused_and_kept(catalog, now, event, problem):
    campaigns = _campaigns(catalog, now)
    with pytest.raises(MalformedEvent) as raised:
        campaigns.plan_event(event)
    assert problem in str(raised.value)
    assert "a@example.com" not in str(raised.value), "problems name the field, never the value"
    assert campaigns.dead_letters.kept == [event]


def test_only_the_contracted_events_trigger_a_review():
    detail = {"orderId": "o-1", "email": "a@example.com", "occurredAt": "2026-11-20T10:00:00Z"}
    assert parse_trigger(_event(detail))[0] == "PurchaseCompleted"
    with pytest.raises(MalformedEvent, match="does not trigger a review"):
        parse_trigger(_event(detail, source="somebody-else"))


# --- a new subscriber's grace period ------------------------------------------------------------


def test_a_new_subscriber_is_not_asked_for_a_review_within_the_grace_period(due, catalog, now):
    del due.fields["last_name"]  # a gap that would make the review due at once
    grace = catalog.review.new_subscriber_grace_days * DAY
    due.subscribed_at = now - DAY
    assert review_email_skip_reason(due, catalog, now) == SkipReason.NEW_SUBSCRIBER
    assert next_review_at(due, catalog) == now - DAY + grace, "the review index offers it when the grace ends"
    assert review_email_skip_reason(due, catalog, now - DAY + grace) is None
    due.subscribed_at = now - grace - DAY
    assert review_email_skip_reason(due, catalog, now) is None


def test_a_profile_created_just_now_is_in_grace_too(due, catalog, now):
    due.created_at = now - dt.timedelta(minutes=1)
    assert review_email_skip_reason(due, catalog, now) == SkipReason.NEW_SUBSCRIBER
