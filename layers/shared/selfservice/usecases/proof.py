"""The consent proof of a profile for the operator (JSON API) and the customer (data download), and the
check of a claimed IP address and user agent against the evidence it holds."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from aws_lambda_powertools import Logger

from selfservice.domain import proof
from selfservice.domain.errors import InvalidInput
from selfservice.usecases import privacy
from selfservice.usecases.ports import Adapters

logger = Logger(child=True)


def consent_proof(adapters: Adapters, profile_id: str) -> proof.ConsentProof:
    """The document from one Query of the profile's partition (NotFound when there is no profile)."""
    profile, ledger, _requests = privacy.records(adapters, profile_id)
    return proof.build(profile, ledger, adapters.catalog, adapters.clock())


@dataclass(frozen=True)
class EvidenceMatch:
    entry_id: str
    at: str
    action: str
    role: str


def check_claim(adapters: Adapters, profile_id: str, ip: str, user_agent: str) -> tuple[int, list[EvidenceMatch]]:
    """Which evidence of the proof a claimed IP address and user agent match: how many items were
    checked, and the matches (a consent's click or the double opt-in request before it).

    The IP address is checked as written and in its normal form (``2001:DB8::1`` as ``2001:db8::1``),
    as API Gateway reports it. Nothing is stored or logged of either value.
    """
    try:
        normal = str(ipaddress.ip_address(ip.strip()))
    except ValueError:
        raise InvalidInput("ip", "is not an IPv4 or IPv6 address") from None
    candidates = {ip, normal}
    document = consent_proof(adapters, profile_id)
    checked, matches = 0, []
    for record in document.consents:
        for evidence in record.evidence:
            checked += 1
            if any(proof.evidence_matches(evidence, candidate, user_agent) for candidate in candidates):
                matches.append(EvidenceMatch(record.entry_id, record.at.isoformat(), record.action, evidence.role))
    logger.info(
        "consent evidence checked", extra={"profile_id": profile_id, "checked": checked, "matches": len(matches)}
    )
    return checked, matches
