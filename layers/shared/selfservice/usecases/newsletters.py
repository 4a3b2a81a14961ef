"""Newsletters that sending systems report (``NewsletterSent`` on the bus): each recipient's history
shows it, and it counts against their frequency (audiences and the review email's cap).

Once per campaign and profile: the recipient's ledger entry is written with a marker keyed by the
campaign, conditionally, so a duplicated event (or a retried batch) records nothing twice.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Annotated, Literal

from aws_lambda_powertools import Logger
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from selfservice.domain.audience import record_newsletter
from selfservice.domain.errors import TemporarilyUnavailable
from selfservice.domain.models import LedgerEntry, LedgerKind, Profile, Source
from selfservice.usecases.ports import Adapters

logger = Logger(child=True)

MAX_RECIPIENTS = 500
_CONFLICT_ROUNDS = 5


class NewsletterSent(BaseModel):
    """``Detail`` of ``Source: "newsletter"``, ``DetailType: "NewsletterSent"`` (README: Sent newsletters)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    campaignId: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    topic: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    channel: Literal["email", "sms"]
    subject: Annotated[str, StringConstraints(min_length=1, max_length=998)]
    sentAt: AwareDatetime
    profileIds: list[Annotated[str, StringConstraints(min_length=1, max_length=64)]] = Field(
        min_length=1, max_length=MAX_RECIPIENTS
    )


@dataclass
class NewsletterOutcome:
    recorded: int = 0
    duplicates: int = 0
    unknown: int = 0
    unknown_ids: list[str] = field(default_factory=list)


def campaign_digest(campaign_id: str) -> str:
    return hashlib.sha256(f"newsletter:{campaign_id}".encode()).hexdigest()[:32]


def _entry(profile: Profile, sent: NewsletterSent) -> LedgerEntry:
    return LedgerEntry(
        profile_id=profile.id,
        at=sent.sentAt.astimezone(dt.UTC),
        kind=LedgerKind.NEWSLETTER_SENT,
        source=Source.SYSTEM,
        topics=[sent.topic],
        detail={
            "campaign_id": sent.campaignId,
            "topic": sent.topic,
            "channel": sent.channel,
            "subject": sent.subject,
        },
    )


def record_newsletter_sent(adapters: Adapters, sent: NewsletterSent) -> NewsletterOutcome:
    """Record the newsletter for each known recipient (unknown ids are skipped and counted).

    Profiles are read 100 at a time (BatchGetItem) and written 33 to a transaction; a profile that
    changed between read and write is read again (a few rounds, then TemporarilyUnavailable: the
    message goes back to the queue, and what was recorded is not recorded again).
    """
    repository = adapters.repository
    digest = campaign_digest(sent.campaignId)
    sent_at = sent.sentAt.astimezone(dt.UTC)
    ids = list(dict.fromkeys(sent.profileIds))
    outcome = NewsletterOutcome()
    wanted = set(ids)
    for _round in range(_CONFLICT_ROUNDS):
        found = {profile.id: profile for profile in repository.get_many(sorted(wanted))}
        gone = sorted(wanted - set(found))
        outcome.unknown += len(gone)
        outcome.unknown_ids += gone
        now = adapters.clock()
        writes = [(record_newsletter(p, sent_at, now), p.version, _entry(p, sent), digest) for p in found.values()]
        result = repository.record_newsletters(writes, now)
        outcome.recorded += len(result.written)
        outcome.duplicates += len(result.duplicates)
        if not result.conflicts:
            logger.info(
                "newsletter recorded",
                extra={
                    "campaign": digest,
                    "recorded": outcome.recorded,
                    "duplicates": outcome.duplicates,
                    "unknown": outcome.unknown,
                },
            )
            return outcome
        wanted = set(result.conflicts)
    raise TemporarilyUnavailable("profiles kept changing while the newsletter was recorded")
