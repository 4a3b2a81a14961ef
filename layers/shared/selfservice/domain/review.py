"""When a profile needs a review, and how complete it is.

The next review time is stored in the sparse, sharded review index on every write, so a
campaign reads only profiles that are due.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from selfservice.catalog import Catalog
from selfservice.domain.models import Profile, SubscriptionStatus


def missing_required_fields(profile: Profile, catalog: Catalog) -> list[str]:
    return [spec.id for spec in catalog.fields if spec.required and profile.value_of(spec.id) is None]


def stale_fields(profile: Profile, catalog: Catalog, now: dt.datetime) -> list[str]:
    """Fields whose value was confirmed longer ago than the catalog's max age allows."""
    stale = []
    for spec in catalog.fields:
        value = profile.fields.get(spec.id)
        if value and spec.max_age_days and value.confirmed_at + dt.timedelta(days=spec.max_age_days) <= now:
            stale.append(spec.id)
    return stale


def next_review_at(profile: Profile, catalog: Catalog) -> dt.datetime | None:
    """The earliest time this profile should be asked for a review, or None when never.

    Only confirmed, reachable subscribers are reviewed; the cooldown after the last review
    email pushes the time back so the index never offers a profile that may not be mailed.
    """
    if profile.status != SubscriptionStatus.SUBSCRIBED or profile.suppressed:
        return None
    reviewed = profile.last_reviewed_at or profile.created_at
    candidates = [reviewed + dt.timedelta(days=catalog.review.interval_days)]
    if missing_required_fields(profile, catalog):
        candidates.append(profile.updated_at)
    for spec in catalog.fields:
        value = profile.fields.get(spec.id)
        if value and spec.max_age_days:
            candidates.append(value.confirmed_at + dt.timedelta(days=spec.max_age_days))
    due = min(candidates)
    if profile.last_review_email_at is not None:
        due = max(due, profile.last_review_email_at + dt.timedelta(days=catalog.review.cooldown_days))
    return due


def review_shard(profile_id: str, shard_count: int) -> int:
    """A stable shard number for the profile, spreading the index over ``shard_count`` partitions."""
    digest = hashlib.sha256(profile_id.encode()).digest()
    return int.from_bytes(digest[:4], "big") % shard_count


def completeness(profile: Profile, catalog: Catalog) -> float:
    """Share of the catalog's fields that are filled, 0.0 to 1.0."""
    filled = sum(1 for spec in catalog.fields if profile.value_of(spec.id) is not None)
    return filled / len(catalog.fields)
