"""Who may receive a topic on a channel at a send time: the one audience rule, and what a sent
newsletter does to a profile.

The paged audience API and the export (Step Functions) both apply :func:`exclusion` to the same
profiles in the same order, so a file and the concatenated pages cannot disagree.

Consent without reading the ledger: a topic counts only while the profile *receives* it
(:func:`selfservice.domain.consent.receiving_topics`: a confirmed subscription with the topic on).
The one writer (``usecases.changes.save_changes``, and the confirmation of a double opt-in) writes
the profile and the ``consent_given``/``consent_withdrawn`` entries that switch its topics in one
transaction, so the received topics are exactly what the ledger proves
(:func:`selfservice.domain.consent.proven_topics`); ``consent_version`` names the wording the
newest consent was given under. Reading the profile alone is therefore the proof, at one item per
profile instead of a partition per profile. The same holds for SMS: the SMS consent entries (with the
confirmed number) are written with the profile by the same writer, so
:func:`selfservice.domain.sms.sms_receiving_topics` and ``sms_consent_version`` are what they prove.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from selfservice.catalog import Catalog
from selfservice.domain.consent import receiving_topics
from selfservice.domain.models import ChannelId, Profile
from selfservice.domain.review import MARKETING_WINDOW, review_shard, why_not_marketing
from selfservice.domain.sms import sms_receiving_topics

AUDIENCE_SHARD_COUNT = 32
"""Partitions of the sparse Audience index (``AUDIENCE#00`` … ``AUDIENCE#31``). The export reads them
in parallel; changing the number needs every profile written again (its shard is stored with it)."""

NO_CONSENT = "no_consent"
CHANNEL_NOT_CHOSEN = "channel_not_chosen"
SMS_NOT_VERIFIED = "sms_not_verified"
NO_SMS_CONSENT = "no_sms_consent"
FREQUENCY_CAP = "frequency_cap"


def audience_member(profile: Profile) -> bool:
    """Whether the profile belongs in the Audience index: it can receive something at some time.

    Pauses and frequency depend on the send time and stay in; what needs a new consent (no confirmed
    subscription, no topic) or can never receive (suppressed) stays out, so the index holds the
    subscribers and nothing else.
    """
    return not profile.suppressed and bool(receiving_topics(profile))


def audience_shard(profile_id: str) -> str:
    """The Audience index partition of a profile (a stable hash of its id)."""
    return f"AUDIENCE#{review_shard(profile_id, AUDIENCE_SHARD_COUNT):02d}"


def audience_shards() -> list[str]:
    return [f"AUDIENCE#{number:02d}" for number in range(AUDIENCE_SHARD_COUNT)]


def frequency_cap(profile: Profile, catalog: Catalog) -> int | None:
    """How many marketing messages the profile's frequency allows in 30 days (None: no limit)."""
    frequency = catalog.frequency(profile.preferences.frequency) or catalog.frequency(catalog.default_frequency)
    return frequency.max_emails_per_30_days if frequency else None


def sent_within_window(profile: Profile, at: dt.datetime) -> int:
    """Marketing messages (review emails and reported newsletters, every channel) in the 30 days up to ``at``."""
    return sum(1 for moment in profile.marketing_emails_at if at - MARKETING_WINDOW < moment <= at)


def exclusion(  # noqa: PLR0911 - one return per rule reads best
    profile: Profile,
    topic_id: str,
    channel: ChannelId,
    at: dt.datetime,
    catalog: Catalog,
    *,
    address_suppressed: bool = False,
) -> str | None:
    """Why the profile is not in the audience of ``topic_id`` on ``channel`` at ``at``, or None when it is.

    Confirmed (a pending double opt-in is not), consent recorded for the topic, not suppressed (the
    profile's flag; for email also the address on the suppression list), not paused at ``at``, the
    channel chosen for the topic (SMS: to the number the customer confirmed with a code), and the
    frequency allows one more message then, counting everything sent in the 30 days up to ``at``.
    SMS also needs the SMS consent for the topic (given when the number was confirmed by its code).
    """
    if channel == "email" and address_suppressed:
        return "suppressed"
    blocked = why_not_marketing(profile, at)
    if blocked:
        return blocked
    if topic_id not in receiving_topics(profile) or profile.consent_version is None:
        return NO_CONSENT
    topic = catalog.topic(topic_id)
    if topic is None or channel not in topic.channels or channel not in profile.preferences.channels_for(topic_id):
        return CHANNEL_NOT_CHOSEN
    if channel == "sms" and not profile.sms_verified():
        return SMS_NOT_VERIFIED
    if channel == "sms" and (topic_id not in sms_receiving_topics(profile) or profile.sms_consent_version is None):
        return NO_SMS_CONSENT
    cap = frequency_cap(profile, catalog)
    if cap is not None and sent_within_window(profile, at) >= cap:
        return FREQUENCY_CAP
    return None


def audience_item(profile: Profile, channel: ChannelId) -> dict[str, Any]:
    """What a sending system gets for one recipient: id, address on the channel, language, field values."""
    address = profile.email if channel == "email" else profile.phone
    return {
        "profileId": profile.id,
        "address": address,
        "locale": profile.locale,
        "fields": {field_id: value.value for field_id, value in sorted(profile.fields.items())},
    }


def record_newsletter(profile: Profile, sent_at: dt.datetime, now: dt.datetime) -> Profile:
    """The profile after a reported newsletter: the send counts against the frequency (if it is within
    the 30-day window), older sends drop out of the window. The version moves on (a conditional write)."""
    updated = profile.model_copy(deep=True)
    kept = [moment for moment in profile.marketing_emails_at if now - moment < MARKETING_WINDOW]
    if now - sent_at < MARKETING_WINDOW:
        kept.append(sent_at)
    updated.marketing_emails_at = sorted(kept)
    updated.version = profile.version + 1
    return updated
