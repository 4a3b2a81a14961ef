"""Privacy self-service: everything stored in one read, the download of "my data", erasure."""

from __future__ import annotations

import datetime as dt
from typing import Any

from aws_lambda_powertools import Logger

from selfservice.domain.models import CustomerRequest, LedgerEntry, Profile, address_hash
from selfservice.usecases.ports import Adapters

logger = Logger(child=True)

Records = tuple[Profile, list[LedgerEntry], list[CustomerRequest]]


def records(adapters: Adapters, profile_id: str) -> Records:
    """Profile, ledger (newest first) and requests from one Query (they share the partition)."""
    return adapters.repository.load_all(profile_id)


def export_document(
    profile: Profile, ledger: list[LedgerEntry], found: list[CustomerRequest], exported_at: dt.datetime
) -> dict[str, Any]:
    """The download of "my data": profile, requests and the whole ledger, nothing internal."""
    return {
        "exported_at": exported_at.isoformat(),
        "profile": profile.model_dump(mode="json", exclude={"token_version"}),
        "requests": [request.model_dump(mode="json") for request in found],
        "history": [entry.model_dump(mode="json") for entry in ledger],
    }


def erase(adapters: Adapters, profile: Profile) -> None:
    """Delete every item of the profile; keep the address only as a hash on the suppression list."""
    adapters.repository.erase(profile)
    adapters.repository.suppress(address_hash(profile.email), "erased", adapters.clock())
    logger.info("profile erased by the customer", extra={"profile_id": profile.id})
