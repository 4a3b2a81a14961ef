"""Privacy self-service: everything stored in one read, the download of "my data", erasure."""

from __future__ import annotations

import datetime as dt
from typing import Any

from aws_lambda_powertools import Logger

from selfservice.catalog import Catalog
from selfservice.domain import proof
from selfservice.domain.consent import SMS, TopicProof, proven_topics, receiving_topics
from selfservice.domain.models import CustomerRequest, LedgerEntry, Profile, Source, address_hash
from selfservice.domain.sms import sms_receiving_topics
from selfservice.usecases.ports import Adapters

logger = Logger(child=True)

Records = tuple[Profile, list[LedgerEntry], list[CustomerRequest]]


def records(adapters: Adapters, profile_id: str) -> Records:
    """Profile, ledger (newest first) and requests from one Query (they share the partition)."""
    return adapters.repository.load_all(profile_id)


def export_document(
    profile: Profile,
    ledger: list[LedgerEntry],
    found: list[CustomerRequest],
    exported_at: dt.datetime,
    catalog: Catalog,
) -> dict[str, Any]:
    """The download of "my data": profile, requests, the whole ledger and what it proves (the consent
    summary and the whole consent proof, as customer service would hand it out), nothing internal."""
    return {
        "exported_at": exported_at.isoformat(),
        "profile": profile.model_dump(mode="json", exclude={"token_version"}),
        "consents": consent_summary(profile, ledger),
        "consent_proof": proof.build(profile, ledger, catalog, exported_at).model_dump(mode="json"),
        "requests": [request.model_dump(mode="json") for request in found],
        "history": [entry.model_dump(mode="json") for entry in ledger],
    }


EVIDENCE_CHECK = (
    "A consent entry's detail keeps evidence_salt and evidence_hash = SHA-256 of "
    "'<evidence_salt>|<IP address>|<user agent>'; a claimed IP address and user agent match the entry "
    "when that hash of them equals evidence_hash. Entries made through the API name the caller instead."
)


def consent_summary(profile: Profile, ledger: list[LedgerEntry]) -> dict[str, Any]:
    """Per topic, the ledger entry that set its current state; ``receiving`` is what the profile gets now;
    ``sms`` the same for the topics received by SMS at the confirmed ``number``.

    Replaying the consent entries gives exactly ``receiving``: a topic the profile receives without a
    recorded consent, or the other way round, would show here as a mismatch.
    """
    proofs = proven_topics(ledger)
    by_sms = proven_topics(ledger, SMS)
    return {
        "receiving": receiving_topics(profile),
        "proven": sorted(topic for topic, proof in proofs.items() if proof.receiving),
        "topics": _proof_list(proofs),
        "sms": {
            "number": profile.verified_phone,
            "receiving": sms_receiving_topics(profile),
            "proven": sorted(topic for topic, proof in by_sms.items() if proof.receiving),
            "topics": _proof_list(by_sms),
        },
        "evidence_check": EVIDENCE_CHECK,
    }


def _proof_list(proofs: dict[str, TopicProof]) -> list[dict[str, Any]]:
    return [
        {
            "topic": proof.topic,
            "receiving": proof.receiving,
            "since": proof.since.isoformat(),
            "source": proof.source.value,
            "wording_version": proof.wording_version,
            "entry_id": proof.entry_id,
        }
        for proof in sorted(proofs.values(), key=lambda proof: proof.topic)
    ]


def erase(adapters: Adapters, profile: Profile, source: Source) -> int:
    """Delete every item of the profile; keep the address only as a hash on the suppression list.

    The one erasure, whichever door (the privacy page, customer service through the API): the
    hash keeps every email away until the address owner confirms a new double opt-in.
    """
    erased = adapters.repository.erase(profile)
    adapters.repository.suppress(address_hash(profile.email), "erased", adapters.clock())
    logger.info("profile erased", extra={"profile_id": profile.id, "items": erased, "source": source.value})
    return erased


def erase_by_id(adapters: Adapters, profile_id: str, source: Source) -> int:
    """:func:`erase` for a caller that has not read the profile (the JSON API)."""
    return erase(adapters, adapters.repository.get(profile_id), source)
