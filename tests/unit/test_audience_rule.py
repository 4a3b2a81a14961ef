"""The one audience rule and what a reported newsletter does to a profile (pure domain, no AWS)."""

import datetime as dt

import pytest

from selfservice.domain.audience import audience_item, audience_member, exclusion, record_newsletter
from selfservice.domain.models import FieldValue, Profile, SubscriptionStatus
from selfservice.domain.review import SkipReason, review_email_skip_reason

AT = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)
MOBILE = "+4915123456789"


@pytest.fixture
def subscriber(profile: Profile) -> Profile:
    """Offers by email, weekly (5 messages in 30 days), consent recorded."""
    return profile.model_copy(update={"consent_version": "2026-11-01"})


def changed(profile: Profile, **preferences: object) -> Profile:
    return profile.model_copy(update={"preferences": profile.preferences.model_copy(update=preferences)})


def on_sms(profile: Profile, *, verified: bool) -> Profile:
    fields = {**profile.fields, "phone": FieldValue(value=MOBILE, confirmed_at=AT)}
    return changed(profile, channels={"offers": ["email", "sms"]}).model_copy(
        update={
            "fields": fields,
            "verified_phone": MOBILE if verified else None,
            "sms_consent_version": "2026-11-01" if verified else None,
        }
    )


def test_a_confirmed_subscriber_with_consent_is_in_on_email(subscriber, catalog):
    assert exclusion(subscriber, "offers", "email", AT, catalog) is None
    assert audience_item(subscriber, "email") == {
        "profileId": "0" * 32,
        "address": "anna@example.com",
        "locale": "de",
        "fields": {"city": "Berlin", "first_name": "Anna", "last_name": "Schmidt"},
    }


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"status": SubscriptionStatus.PENDING}, "unconfirmed"),
        ({"status": SubscriptionStatus.UNSUBSCRIBED}, "not_subscribed"),
        ({"status": SubscriptionStatus.NOT_SUBSCRIBED}, "not_subscribed"),
        ({"suppressed": True}, "suppressed"),
        ({"consent_version": None}, "no_consent"),
    ],
)
def test_the_profile_wide_rules(subscriber, catalog, change, reason):
    assert exclusion(subscriber.model_copy(update=change), "offers", "email", AT, catalog) == reason


def test_a_topic_without_consent_is_out(subscriber, catalog):
    assert exclusion(subscriber, "news", "email", AT, catalog) == "no_consent"
    assert exclusion(subscriber, "events", "email", AT, catalog) == "no_consent"


def test_an_address_on_the_suppression_list_keeps_email_out_but_not_a_verified_sms(subscriber, catalog):
    sms = on_sms(subscriber, verified=True)
    assert exclusion(sms, "offers", "email", AT, catalog, address_suppressed=True) == "suppressed"
    assert exclusion(sms, "offers", "sms", AT, catalog, address_suppressed=True) is None


def test_paused_at_the_send_time_is_out_and_a_pause_ending_before_it_is_not(subscriber, catalog):
    assert exclusion(changed(subscriber, paused_until=AT + dt.timedelta(minutes=1)), "offers", "email", AT, catalog)
    assert exclusion(changed(subscriber, paused_until=AT), "offers", "email", AT, catalog) is None


def test_the_channel_must_be_chosen_for_the_topic_and_sms_needs_the_confirmed_number(subscriber, catalog):
    assert exclusion(subscriber, "offers", "sms", AT, catalog) == "channel_not_chosen"
    only_sms = changed(on_sms(subscriber, verified=True), channels={"offers": ["sms"]})
    assert exclusion(only_sms, "offers", "email", AT, catalog) == "channel_not_chosen"
    assert exclusion(only_sms, "offers", "sms", AT, catalog) is None
    assert exclusion(on_sms(subscriber, verified=False), "offers", "sms", AT, catalog) == "sms_not_verified"
    moved = on_sms(subscriber, verified=True).model_copy(update={"verified_phone": "+4915100000000"})
    assert exclusion(moved, "offers", "sms", AT, catalog) == "sms_not_verified", "a new number is not confirmed"
    assert exclusion(changed(subscriber, topics={"news": True}), "news", "sms", AT, catalog) == "channel_not_chosen"
    unproven = only_sms.model_copy(update={"sms_consent_version": None})
    assert exclusion(unproven, "offers", "sms", AT, catalog) == "no_sms_consent"


def test_the_frequency_counts_every_message_of_the_30_days_up_to_the_send_time(subscriber, catalog):
    four = [AT - dt.timedelta(days=day) for day in (1, 5, 10, 29)]
    assert (
        exclusion(subscriber.model_copy(update={"marketing_emails_at": four}), "offers", "email", AT, catalog) is None
    )
    five = [*four, AT - dt.timedelta(days=20)]
    capped = subscriber.model_copy(update={"marketing_emails_at": five})
    assert exclusion(capped, "offers", "email", AT, catalog) == "frequency_cap"
    assert exclusion(capped, "offers", "email", AT + dt.timedelta(days=2), catalog) is None, "day 29's left by then"
    assert exclusion(changed(capped, frequency="as_published"), "offers", "email", AT, catalog) is None


def test_only_who_can_receive_something_is_in_the_index(subscriber):
    assert audience_member(subscriber)
    assert audience_member(changed(subscriber, paused_until=AT)), "a pause depends on the send time"
    assert not audience_member(subscriber.model_copy(update={"suppressed": True}))
    assert not audience_member(subscriber.model_copy(update={"status": SubscriptionStatus.PENDING}))
    assert not audience_member(changed(subscriber, topics={"offers": False}))


def test_a_reported_newsletter_counts_within_the_window_and_drops_older_sends(subscriber):
    old = AT - dt.timedelta(days=31)
    before = subscriber.model_copy(update={"marketing_emails_at": [old, AT - dt.timedelta(days=3)]})
    after = record_newsletter(before, AT - dt.timedelta(hours=1), AT)
    assert after.marketing_emails_at == [AT - dt.timedelta(days=3), AT - dt.timedelta(hours=1)]
    assert after.version == before.version + 1
    assert record_newsletter(before, old, AT).marketing_emails_at == [AT - dt.timedelta(days=3)]


def test_reported_newsletters_count_against_the_review_emails_cap(subscriber, catalog):
    due = subscriber.model_copy(update={"last_reviewed_at": AT - dt.timedelta(days=400)})
    assert review_email_skip_reason(due, catalog, AT) is None
    for day in range(5):
        due = record_newsletter(due, AT - dt.timedelta(days=day + 1), AT)
    assert review_email_skip_reason(due, catalog, AT) == SkipReason.FREQUENCY_CAP
