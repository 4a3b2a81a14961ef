"""The forms anyone can fill in with an address: ``/subscribe`` and ``/new-link``.

Both email whatever address is typed in, and neither may tell a known address from an unknown one,
by its answer or by the answer's time. So the page's part (:func:`request_subscription`,
:func:`request_new_link`) is the same for every address: check the form, count the limits
(:mod:`~selfservice.usecases.limits`) and hand an :class:`~selfservice.usecases.ports.AddressRequest`
over; the page then answers "if this address is ours, an email is on its way". In another invocation
:func:`handle` decides what the address gets and sends it.
"""

from __future__ import annotations

from typing import Any

from selfservice.domain.changes import checked_email
from selfservice.domain.models import Language
from selfservice.usecases import access, limits, subscription
from selfservice.usecases.ports import Adapters, AddressRequest
from selfservice.usecases.subscription import ClientEvidence


def request_new_link(adapters: Adapters, email: str, source_ip: str) -> bool:
    """The page's part of "email me a new link" (``email`` has passed
    :func:`~selfservice.domain.changes.checked_email`). False: over a limit, nothing handed over."""
    return _hand_over(adapters, source_ip, kind="new_link", email=email)


def request_subscription(
    adapters: Adapters, address: str, topics: list[str], locale: Language, evidence: ClientEvidence
) -> bool:
    """The page's part of a double opt-in. InvalidInput for a wrong address or topic; False: over a
    limit, nothing handed over."""
    wanted = subscription.checked_topics(adapters.catalog, topics)
    return _hand_over(
        adapters,
        evidence.ip,
        kind="subscribe",
        email=checked_email(address),
        topics=tuple(wanted),
        locale=locale,
        evidence=evidence.as_detail(),
    )


def _hand_over(adapters: Adapters, source_ip: str, *, kind: limits.Form, email: str, **asked: Any) -> bool:
    if not limits.admitted(adapters, kind, email, source_ip):
        return False
    request = AddressRequest(
        kind=kind, email=email, base_url=adapters.settings.public_base_url, requested_at=adapters.clock(), **asked
    )
    adapters.handoff.submit(request)
    return True


def handle(adapters: Adapters, request: AddressRequest) -> str:
    """Answer ``request`` by email if the address is to get one; returns what happened."""
    if request.kind == "new_link":
        return access.send_new_link(adapters, request.email)
    return subscription.subscribe(adapters, request)
