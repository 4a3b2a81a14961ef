"""A pause that comes back on its own, told: a few days before a pause ends (catalog
``pause.reminder_days_before``) the customer gets a short note that emails resume on that day, with
links to extend the pause and to change topics. Once per pause (an extended pause has a new end, and
its own note).

Run once a day by a schedule. It reads only the sparse ``PauseEnding`` index (paused subscribers not
yet told, keyed by when the note is due), never the table. Like the review email, a note is first
*claimed* (a write of the pause end it tells about, conditional on the version read: one sender
wins), then sent, then recorded (the mailer's ``email_sent`` entry). An email that cannot be sent
gives the claim back, so the next run tries again.

A service note, not a newsletter: it is not counted against the customer's frequency (it does not
enter ``marketing_emails_at``) and carries no one-click unsubscribe; it goes only to a subscriber
whose address is not suppressed.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable

from aws_lambda_powertools import Logger

from selfservice.domain.consent import receiving_topics
from selfservice.domain.models import Profile, Source, address_hash
from selfservice.domain.pause import pause_note_due
from selfservice.storage import pause_shard_key
from selfservice.tokens import Purpose
from selfservice.usecases.access import link
from selfservice.usecases.ports import Adapters

logger = Logger(child=True)

PAGE = 100
EMAIL_TYPE = "pause_ending"


def send_due_notes(adapters: Adapters, time_left: Callable[[], float] | None = None) -> dict[str, int]:
    """Send every pause-ending note due now; returns what happened, by outcome.

    ``time_left`` (seconds) lets a Lambda stop before its timeout: what is left stays due for the next run.
    """
    now = adapters.clock()
    counts: Counter[str] = Counter()
    for shard in range(adapters.settings.review_shard_count):
        cursor: dict[str, str] | None = None
        while True:
            if time_left is not None and time_left() < 30:
                counts["left_for_next_run"] += 1
                return dict(counts)
            ids, cursor = adapters.repository.pause_notes_due(pause_shard_key(shard), now, PAGE, cursor)
            profiles = adapters.repository.get_many(ids)
            suppressed = adapters.repository.suppressed_among([address_hash(p.email) for p in profiles])
            for profile in profiles:
                counts[_tell(adapters, profile, now, address_hash(profile.email) in suppressed)] += 1
            if cursor is None:
                break
    logger.info("pause notes sent", extra={"outcomes": dict(counts)})
    return dict(counts)


def _tell(adapters: Adapters, profile: Profile, now: dt.datetime, suppressed: bool) -> str:
    """Claim, send and record one note; what happened (``sent``, or why not)."""
    days_before = adapters.catalog.pause.reminder_days_before
    due = pause_note_due(profile, days_before)
    if due is None or due > now:
        return "not_due"  # the index lagged behind a write that read it again (eventually consistent)
    paused_until = profile.preferences.paused_until
    assert paused_until is not None  # a note is due only for a pause
    claimed = profile.model_copy(update={"pause_note_sent_for": paused_until, "version": profile.version + 1})
    if not adapters.repository.replace_if_version(claimed, profile.version):
        return "changed"  # the customer changed something meanwhile: the next run reads it again
    if suppressed or not profile.preferences.is_paused(now):
        return "suppressed" if suppressed else "pause_over"  # claimed only: it leaves the index
    receiving = set(receiving_topics(profile))
    topics = [topic.name.get(profile.locale) for topic in adapters.catalog.visible_topics() if topic.id in receiving]
    manage = link(adapters, profile, Purpose.MANAGE, "/link")
    email = adapters.renderer.render(
        EMAIL_TYPE,
        profile.locale,
        marketing=False,
        paused_until=paused_until,
        topics=topics,
        extend_link=f"{manage}&next=/communication#pause",
        topics_link=f"{manage}&next=/communication",
        first_name=profile.value_of("first_name") or "",
        recipient=profile.email,
        company=adapters.settings.company_name,
    )
    try:
        adapters.mailer.send(claimed, email, Source.SYSTEM, now=now, context={"paused_until": paused_until.isoformat()})
    except Exception:
        given_back = claimed.model_copy(
            update={"pause_note_sent_for": profile.pause_note_sent_for, "version": claimed.version + 1}
        )
        adapters.repository.replace_if_version(given_back, claimed.version)
        logger.exception("pause note not sent", extra={"profile_id": profile.id})
        return "failed"
    logger.info("pause note sent", extra={"profile_id": profile.id})
    return "sent"
