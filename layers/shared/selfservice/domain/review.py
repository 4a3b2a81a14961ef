"""When a profile needs a review, and how complete it is.

The next review time is stored in the sparse, sharded review index on every write, so a
campaign reads only profiles that are due.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from enum import StrEnum

from selfservice.catalog import Catalog
from selfservice.domain.models import Profile, SubscriptionStatus

MARKETING_WINDOW = dt.timedelta(days=30)
"""The window of a frequency's ``max_emails_per_30_days`` (and of ``Profile.marketing_emails_at``)."""


class SkipReason(StrEnum):
    """Why a review email is not sent to a profile (the run summary counts them)."""

    SUPPRESSED = "suppressed"
    UNCONFIRMED = "unconfirmed"
    NOT_SUBSCRIBED = "not_subscribed"
    PAUSED = "paused"
    NO_EMAIL_CHANNEL = "no_email_channel"
    COOLDOWN = "cooldown"
    FREQUENCY_CAP = "frequency_cap"
    NOT_DUE = "not_due"
    NEW_SUBSCRIBER = "new_subscriber"
    """Within the catalog's grace period after subscribing."""
    NOT_FOUND = "not_found"
    """Erased between selection and sending."""


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
    if profile.status != SubscriptionStatus.SUBSCRIBED or profile.suppressed or not email_topics(profile, catalog):
        return None
    reviewed = profile.last_reviewed_at or profile.created_at
    candidates = [reviewed + dt.timedelta(days=catalog.review.interval_days)]
    if missing_required_fields(profile, catalog):
        candidates.append(profile.updated_at)
    for spec in catalog.fields:
        value = profile.fields.get(spec.id)
        if value and spec.max_age_days:
            candidates.append(value.confirmed_at + dt.timedelta(days=spec.max_age_days))
    due = max(min(candidates), grace_ends_at(profile, catalog))
    if profile.last_review_email_at is not None:
        due = max(due, profile.last_review_email_at + dt.timedelta(days=catalog.review.cooldown_days))
    if profile.preferences.paused_until is not None:
        due = max(due, profile.preferences.paused_until)
    cap = _frequency_cap(profile, catalog)
    sent = sorted(profile.marketing_emails_at, reverse=True)
    if cap is not None and len(sent) >= cap:
        # Due once the cap-th newest email has left the 30-day window.
        due = max(due, sent[cap - 1] + MARKETING_WINDOW)
    return due


def grace_ends_at(profile: Profile, catalog: Catalog) -> dt.datetime:
    """Until when a new subscriber (or a new profile) is not asked for a review."""
    started = max(profile.created_at, profile.subscribed_at or profile.created_at)
    return started + dt.timedelta(days=catalog.review.new_subscriber_grace_days)


def review_shard(profile_id: str, shard_count: int) -> int:
    """A stable shard number for the profile, spreading the index over ``shard_count`` partitions."""
    digest = hashlib.sha256(profile_id.encode()).digest()
    return int.from_bytes(digest[:4], "big") % shard_count


@dataclass(frozen=True)
class Completeness:
    """How complete a profile is, by one rule: every catalog field counts, each the same.

    The share and the list of what is missing come from the same fields, so they cannot disagree:
    the percentage is 100 exactly when nothing is missing.
    """

    counted: tuple[str, ...]
    """The fields that count (all catalog fields, in catalog order)."""
    missing: tuple[str, ...]
    """The counted fields without a value, in catalog order."""

    @property
    def share(self) -> float:
        """0.0 to 1.0."""
        return (len(self.counted) - len(self.missing)) / len(self.counted) if self.counted else 1.0

    @property
    def percent(self) -> int:
        """Whole percent, rounded down: 100 only when nothing is missing, 0 only when nothing is filled."""
        if not self.missing:
            return 100
        filled = len(self.counted) - len(self.missing)
        return max(filled * 100 // len(self.counted), 1 if filled else 0)


def completeness(profile: Profile, catalog: Catalog) -> Completeness:
    """Which catalog fields are filled and which are missing (see :class:`Completeness`)."""
    counted = tuple(spec.id for spec in catalog.fields)
    return Completeness(counted=counted, missing=tuple(f for f in counted if profile.value_of(f) in (None, "", [])))


# --- review campaigns: what is due, and whether a review email may go out -------------------


@dataclass(frozen=True)
class ReviewNeed:
    """What a review email asks the customer to look at."""

    missing: tuple[str, ...] = ()
    """Required catalog fields without a value, in catalog order."""
    stale: tuple[str, ...] = ()
    """Fields confirmed longer ago than their max age, in catalog order."""
    overdue: bool = False
    """The whole profile has not been reviewed for the catalog's review interval."""

    @property
    def due(self) -> bool:
        return bool(self.missing or self.stale or self.overdue)

    @property
    def focus(self) -> list[str]:
        """The fields the review page shows first: missing ones, then stale ones."""
        return [*self.missing, *self.stale]


def review_overdue(profile: Profile, catalog: Catalog, now: dt.datetime) -> bool:
    reviewed = profile.last_reviewed_at or profile.created_at
    return reviewed + dt.timedelta(days=catalog.review.interval_days) <= now


def review_need(profile: Profile, catalog: Catalog, now: dt.datetime) -> ReviewNeed:
    """Missing required fields, stale fields, and whether the review interval has passed."""
    return ReviewNeed(
        missing=tuple(missing_required_fields(profile, catalog)),
        stale=tuple(stale_fields(profile, catalog, now)),
        overdue=review_overdue(profile, catalog, now),
    )


def why_not_marketing(profile: Profile, now: dt.datetime) -> str | None:
    """The reason no marketing email may go to this profile at all, or None when one may."""
    if profile.suppressed:
        return SkipReason.SUPPRESSED.value
    if profile.status == SubscriptionStatus.PENDING:
        return SkipReason.UNCONFIRMED.value
    if profile.status != SubscriptionStatus.SUBSCRIBED:
        return SkipReason.NOT_SUBSCRIBED.value
    if profile.preferences.is_paused(now):
        return SkipReason.PAUSED.value
    return None


def email_topics(profile: Profile, catalog: Catalog) -> list[str]:
    """Subscribed, offered topics the customer receives by email (the topic offers email too)."""
    topics = []
    for topic_id in profile.preferences.subscribed_topics():
        topic = catalog.topic(topic_id)
        offered = topic is not None and not topic.hidden and "email" in topic.channels
        if offered and "email" in profile.preferences.channels_for(topic_id):
            topics.append(topic_id)
    return topics


def _frequency_cap(profile: Profile, catalog: Catalog) -> int | None:
    frequency = catalog.frequency(profile.preferences.frequency) or catalog.frequency(catalog.default_frequency)
    return frequency.max_emails_per_30_days if frequency else None


def recent_marketing_emails(profile: Profile, now: dt.datetime) -> list[dt.datetime]:
    """Send times of the marketing emails within the last 30 days, oldest first."""
    return sorted(moment for moment in profile.marketing_emails_at if now - moment < MARKETING_WINDOW)


def review_email_skip_reason(  # noqa: PLR0911 - one return per reason reads best
    profile: Profile, catalog: Catalog, now: dt.datetime, *, address_suppressed: bool = False
) -> SkipReason | None:
    """Why no review email may go to this profile now, or None when one may.

    ``address_suppressed``: the address is on the suppression list (bounce, complaint, erasure)
    even if the profile item does not say so yet.
    """
    if address_suppressed:
        return SkipReason.SUPPRESSED
    blocked = why_not_marketing(profile, now)
    if blocked:
        return SkipReason(blocked)
    if not email_topics(profile, catalog):
        return SkipReason.NO_EMAIL_CHANNEL
    if now < grace_ends_at(profile, catalog):
        return SkipReason.NEW_SUBSCRIBER
    cooldown = dt.timedelta(days=catalog.review.cooldown_days)
    if profile.last_review_email_at is not None and now < profile.last_review_email_at + cooldown:
        return SkipReason.COOLDOWN
    cap = _frequency_cap(profile, catalog)
    if cap is not None and len(recent_marketing_emails(profile, now)) >= cap:
        return SkipReason.FREQUENCY_CAP
    if not review_need(profile, catalog, now).due:
        return SkipReason.NOT_DUE
    return None


def campaign_marker(campaign: str) -> str:
    """What the profile keeps of the campaign that claimed it: a short digest (the profile item
    stays small; the ledger entry names the campaign in full)."""
    return hashlib.sha256(campaign.encode()).hexdigest()[:16]


def claimed_by(profile: Profile, campaign: str) -> bool:
    """Whether ``campaign`` (a run or an event key) holds the profile's last review claim."""
    return profile.last_review_campaign == campaign_marker(campaign)


def claim_review_email(profile: Profile, now: dt.datetime, campaign: str) -> Profile:
    """The profile as it is claimed for one review email, before the email goes out.

    The cooldown starts, the send counts against the frequency cap, and ``campaign`` (a run or
    an event key) lets a retried batch recognise whom it already mailed. Written conditionally on
    ``profile.version``, so of several executions that read the same profile only one wins.
    """
    updated = profile.model_copy(deep=True)
    updated.last_review_email_at = now
    updated.marketing_emails_at = [*recent_marketing_emails(profile, now), now]
    updated.last_review_campaign = campaign_marker(campaign)
    updated.version = profile.version + 1
    return updated


def release_review_claim(current: Profile, before_claim: Profile) -> Profile:
    """``current`` with the review claim taken back (the email could not be sent).

    Only the review bookkeeping returns to what it was before the claim; anything the customer
    changed in between stays. The version moves on, so the release is itself a conditional write.
    """
    released = current.model_copy(deep=True)
    released.last_review_email_at = before_claim.last_review_email_at
    released.marketing_emails_at = list(before_claim.marketing_emails_at)
    released.last_review_campaign = before_claim.last_review_campaign
    released.version = current.version + 1
    return released
