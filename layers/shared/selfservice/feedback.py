"""SES feedback: hard bounces and complaints put an address on the suppression list.

SES publishes the events of the configuration set to EventBridge; the event shape below is what
SES sends (``detail.eventType`` ``Bounce`` or ``Complaint``). A soft (transient) bounce suppresses
nothing. The list keeps only a hash of the address, and the profile, if any, is marked so that
no marketing email is ever sent to it again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Literal

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict, Field

from selfservice.domain.changes import checked_email, mark_suppressed
from selfservice.domain.errors import VersionConflict
from selfservice.domain.models import address_hash
from selfservice.storage import ProfileRepository

logger = Logger(child=True)


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Recipient(_Lenient):
    emailAddress: str = Field(min_length=3, max_length=320)  # SES spells its fields in camelCase


class Bounce(_Lenient):
    bounceType: Literal["Permanent", "Transient", "Undetermined"]
    bouncedRecipients: list[Recipient] = Field(min_length=1)


class Complaint(_Lenient):
    complainedRecipients: list[Recipient] = Field(min_length=1)


class SesFeedback(_Lenient):
    """``detail`` of an SES event published to EventBridge."""

    eventType: Literal["Bounce", "Complaint"]
    bounce: Bounce | None = None
    complaint: Complaint | None = None

    def suppressed_addresses(self) -> tuple[str, list[str]]:
        """(reason, addresses) this event puts on the suppression list."""
        if self.eventType == "Complaint" and self.complaint:
            return "complaint", [r.emailAddress for r in self.complaint.complainedRecipients]
        if self.eventType == "Bounce" and self.bounce and self.bounce.bounceType == "Permanent":
            return "hard_bounce", [r.emailAddress for r in self.bounce.bouncedRecipients]
        return "", []


def record_feedback(feedback: SesFeedback, repository: ProfileRepository, clock: Callable[[], dt.datetime]) -> int:
    """Suppress every address the event names; return how many addresses were suppressed."""
    reason, addresses = feedback.suppressed_addresses()
    if not addresses:
        logger.info("feedback needs no suppression", extra={"event_type": feedback.eventType})
        return 0
    for raw in addresses:
        address = checked_email(raw, field="recipient")
        now = clock()
        repository.suppress(address_hash(address), reason, now)
        _mark_profile(repository, address, reason, now)
    logger.info("addresses suppressed", extra={"reason": reason, "count": len(addresses)})
    return len(addresses)


def _mark_profile(repository: ProfileRepository, address: str, reason: str, now: dt.datetime) -> None:
    for _attempt in range(3):
        profile = repository.find_by_email(address)
        if profile is None or profile.suppressed:
            return
        updated, entry = mark_suppressed(profile, now, reason)
        try:
            repository.save(updated, profile.version, [entry])
        except VersionConflict:
            continue
        logger.info("profile marked suppressed", extra={"profile_id": profile.id, "reason": reason})
        return
