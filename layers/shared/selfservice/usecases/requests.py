"""Customer requests: stored with a status the customer sees, routed to customer service (bus + mailbox)."""

from __future__ import annotations

from aws_lambda_powertools import Logger

from selfservice.domain.models import CustomerRequest, LedgerEntry, LedgerKind, Profile, RequestType, Source
from selfservice.usecases.ports import Adapters

logger = Logger(child=True)


def submit_request(
    adapters: Adapters, profile: Profile, request_type: RequestType, message: str, source: Source
) -> CustomerRequest:
    """Store the request, put RequestSubmitted on the bus and email the service mailbox."""
    settings = adapters.settings
    now = adapters.clock()
    request = CustomerRequest(profile_id=profile.id, type=request_type, message=message, created_at=now, updated_at=now)
    entry = LedgerEntry(
        profile_id=profile.id,
        at=now,
        kind=LedgerKind.REQUEST_SUBMITTED,
        source=source,
        detail={"request_id": request.id, "type": request_type.value},
    )
    adapters.repository.add_request(request, entry)
    adapters.publisher.publish(
        "RequestSubmitted", {"requestId": request.id, "profileId": profile.id, "type": request_type.value}
    )
    language = adapters.catalog.default_language
    type_spec = adapters.catalog.request_type(request_type.value)
    email = adapters.renderer.render(
        "service_request",
        language,
        marketing=False,
        request=request,
        type_label=type_spec.label.get(language) if type_spec else request_type.value,
        profile=profile,
        recipient=settings.service_mailbox,
        company=settings.company_name,
    )
    adapters.mailer.send_internal(settings.service_mailbox, email, reply_to=profile.email)
    logger.info("request submitted", extra={"profile_id": profile.id, "request_id": request.id})
    return request


def requests_of(adapters: Adapters, profile_id: str) -> list[CustomerRequest]:
    return adapters.repository.requests(profile_id)
