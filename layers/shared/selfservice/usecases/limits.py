"""The limits of the forms anyone can fill in with an address: per address and per client.

The numbers are :class:`~selfservice.settings.RateLimits`; the counting (sliding windows, atomic
under concurrency) is :meth:`~selfservice.storage.ProfileRepository.count_attempt`. Keys hold hashes,
never an address or an IP address.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
from typing import Literal

from aws_lambda_powertools import Logger

from selfservice.domain.models import address_hash
from selfservice.settings import RateLimit
from selfservice.usecases.ports import Adapters

logger = Logger(child=True)

Form = Literal["subscribe", "new_link", "sms_code", "sms_check"]


def client_of(source_ip: str) -> str:
    """Who a limit per client counts: the IPv4 address, or the /64 network of an IPv6 address (one
    customer's line usually has a whole /64, so counting single IPv6 addresses would count nothing)."""
    try:
        address = ipaddress.ip_address(source_ip)
    except ValueError:
        return source_ip[:64]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def client_admitted(adapters: Adapters, form: Literal["accessibility"], source_ip: str) -> bool:
    """Count one use of ``form`` for the client (a form that names no address); False once over its limit."""
    client = hashlib.sha256(f"client:{client_of(source_ip)}".encode()).hexdigest()
    rules = _rules(getattr(adapters.settings.rate_limits, form).per_client)
    if adapters.repository.count_attempt(f"{form}:client:{client}", rules, adapters.clock()):
        return True
    logger.info("form over its limit per client", extra={"form": form})
    return False


def _rules(limits: tuple[RateLimit, ...]) -> list[tuple[int, dt.timedelta]]:
    return [(limit.attempts, limit.window) for limit in limits]


def admitted(adapters: Adapters, form: Form, email: str, source_ip: str) -> bool:
    """Count one use of ``form`` for the client and for the address; False once either is over a limit
    (then nothing more happens for the request, and it is answered like any other)."""
    return admitted_for(adapters, form, address_hash(email), source_ip)


def admitted_for(adapters: Adapters, form: Form, subject: str, source_ip: str | None) -> bool:
    """:func:`admitted` for any hashed subject (an address, a mobile number); ``source_ip`` None counts
    the subject only (a caller of the JSON API, signed with IAM, is no anonymous client)."""
    bounds = getattr(adapters.settings.rate_limits, form)
    now = adapters.clock()
    repository = adapters.repository
    if source_ip is not None:
        client = hashlib.sha256(f"client:{client_of(source_ip)}".encode()).hexdigest()
        if not repository.count_attempt(f"{form}:client:{client}", _rules(bounds.per_client), now):
            logger.info("form over its limit per client", extra={"form": form})
            return False
    if not repository.count_attempt(f"{form}:address:{subject}", _rules(bounds.per_address), now):
        logger.info("form over its limit per address", extra={"form": form})
        return False
    return True
