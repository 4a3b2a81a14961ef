"""When a profile enters the review index (the sparse index the campaigns read)."""

import datetime as dt

from selfservice.domain.models import FieldValue, SubscriptionStatus
from selfservice.domain.review import completeness, missing_required_fields, next_review_at, review_shard, stale_fields


def test_complete_fresh_profile_is_due_after_the_review_interval(profile, catalog):
    profile.last_reviewed_at = profile.created_at
    due = next_review_at(profile, catalog)
    assert due == profile.created_at + dt.timedelta(days=catalog.review.interval_days)


def test_missing_required_field_makes_profile_due_now(profile, catalog, now):
    del profile.fields["city"]
    assert missing_required_fields(profile, catalog) == ["city"]
    assert next_review_at(profile, catalog) <= now


def test_stale_field_is_due_when_it_passes_its_max_age(profile, catalog, now):
    profile.fields["street"] = FieldValue(value="Hauptstr. 1", confirmed_at=now - dt.timedelta(days=400))
    assert stale_fields(profile, catalog, now) == ["street"]
    assert next_review_at(profile, catalog) == now - dt.timedelta(days=400) + dt.timedelta(days=365)


def test_cooldown_pushes_the_next_review_back(profile, catalog, now):
    del profile.fields["city"]
    profile.last_review_email_at = now - dt.timedelta(days=5)
    assert next_review_at(profile, catalog) == now + dt.timedelta(days=catalog.review.cooldown_days - 5)


def test_only_reachable_subscribers_are_in_the_index(profile, catalog):
    for status in (SubscriptionStatus.PENDING, SubscriptionStatus.UNSUBSCRIBED, SubscriptionStatus.NOT_SUBSCRIBED):
        profile.status = status
        assert next_review_at(profile, catalog) is None
    profile.status = SubscriptionStatus.SUBSCRIBED
    profile.suppressed = True
    assert next_review_at(profile, catalog) is None


def test_shards_are_stable_and_spread(catalog):
    ids = [f"{n:032x}" for n in range(800)]
    shards = [review_shard(i, 8) for i in ids]
    assert shards == [review_shard(i, 8) for i in ids]
    assert all(60 < shards.count(s) < 140 for s in range(8))


def test_completeness_counts_filled_catalog_fields(profile, catalog):
    assert completeness(profile, catalog).share == 3 / len(catalog.fields)
