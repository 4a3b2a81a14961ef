"""Customer requests: submitted on the pages, worked on by customer service through the API.

The customer sees the status and every reply on the requests page and gets an email for each reply
and when the request is closed. The message goes to the service mailbox and the API only, never
onto the bus; events name the request, its type and its status.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger

from selfservice.domain.errors import InvalidInput, NotFound, RequestClosed, VersionConflict
from selfservice.domain.models import (
    MAX_REQUEST_TEXT,
    CustomerRequest,
    LedgerEntry,
    LedgerKind,
    OutboxEvent,
    Profile,
    RequestReply,
    RequestStatus,
    RequestType,
    Source,
    new_id,
    new_request_id,
)
from selfservice.tokens import Purpose
from selfservice.usecases.access import link
from selfservice.usecases.ports import Adapters

logger = Logger(child=True)

PAGE_SIZE = 50


def submit_request(
    adapters: Adapters, profile: Profile, request_type: RequestType, message: str, source: Source
) -> CustomerRequest:
    """Store the request with its RequestSubmitted event and email the mailbox of its type (catalog)."""
    now = adapters.clock()
    request = CustomerRequest(
        id=new_request_id(profile.id),
        profile_id=profile.id,
        type=request_type,
        message=message,
        created_at=now,
        updated_at=now,
    )
    entry = LedgerEntry(
        profile_id=profile.id,
        at=now,
        kind=LedgerKind.REQUEST_SUBMITTED,
        source=source,
        detail={"request_id": request.id, "type": request_type.value},
        event=OutboxEvent(
            type="RequestSubmitted",
            detail={"requestId": request.id, "profileId": profile.id, "type": request_type.value},
        ),
    )
    adapters.repository.add_request(request, entry)
    _tell_service(adapters, request, profile, profile.email)
    logger.info("request submitted", extra={"profile_id": profile.id, "request_id": request.id})
    return request


def submit_feedback(adapters: Adapters, profile: Profile | None, message: str, reply_to: str | None) -> CustomerRequest:
    """Accessibility feedback from the statement's form: a request of type ``accessibility``.

    Signed in, it is the customer's own request (on their requests page, answered like any other).
    Without signing in it is kept under an id of its own that names no profile (``profileId`` then
    belongs to no profile); the address the sender gave, if any, only goes to the type's mailbox as
    the email's Reply-To (customer service answers by email), it is not stored.
    """
    if profile is not None:
        return submit_request(adapters, profile, RequestType.ACCESSIBILITY, message, Source.PAGE)
    now = adapters.clock()
    owner = new_id()
    request = CustomerRequest(
        id=new_request_id(owner),
        profile_id=owner,
        type=RequestType.ACCESSIBILITY,
        message=message,
        created_at=now,
        updated_at=now,
    )
    entry = LedgerEntry(
        profile_id=owner,
        at=now,
        kind=LedgerKind.REQUEST_SUBMITTED,
        source=Source.PAGE,
        detail={"request_id": request.id, "type": RequestType.ACCESSIBILITY.value, "signed_in": "no"},
        event=OutboxEvent(
            type="RequestSubmitted",
            detail={"requestId": request.id, "profileId": owner, "type": RequestType.ACCESSIBILITY.value},
        ),
    )
    adapters.repository.add_request_without_profile(request, entry)
    _tell_service(adapters, request, None, reply_to)
    logger.info("accessibility feedback submitted", extra={"request_id": request.id, "signed_in": False})
    return request


def _tell_service(adapters: Adapters, request: CustomerRequest, profile: Profile | None, reply_to: str | None) -> None:
    """The email to the mailbox of the request's type (Reply-To: the customer, when there is an address)."""
    settings = adapters.settings
    language = adapters.catalog.default_language
    type_spec = adapters.catalog.request_type(request.type.value)
    mailbox = (type_spec.mailbox if type_spec else None) or settings.service_mailbox
    email = adapters.renderer.render(
        "service_request",
        language,
        marketing=False,
        request=request,
        type_label=type_spec.label.get(language) if type_spec else request.type.value,
        profile=profile,
        reply_possible=reply_to is not None,
        recipient=mailbox,
        company=settings.company_name,
    )
    adapters.mailer.send_internal(mailbox, email, reply_to=reply_to)


def requests_of(adapters: Adapters, profile_id: str) -> list[CustomerRequest]:
    return adapters.repository.requests(profile_id)


def get_request(adapters: Adapters, request_id: str) -> CustomerRequest:
    return adapters.repository.get_request(request_id)


def list_requests(
    adapters: Adapters,
    status: RequestStatus,
    request_type: RequestType | None,
    cursor: dict[str, str] | None,
    limit: int = PAGE_SIZE,
) -> tuple[list[CustomerRequest], dict[str, str] | None]:
    """A page of requests with ``status``, oldest first, and where the next page starts (or None)."""
    return adapters.repository.list_requests(status.value, request_type.value if request_type else None, limit, cursor)


def update_request(
    adapters: Adapters,
    request_id: str,
    status: RequestStatus | None,
    reply: str | None,
    expected_versions: frozenset[int] | None,
    source: Source = Source.CUSTOMER_SERVICE,
) -> CustomerRequest:
    """Customer service moves a request on (in progress, closed) and/or replies to it.

    ``expected_versions``: the versions the change may apply to (If-Match), None for any. One read
    and one conditional write with its ledger entry: of two concurrent changes one wins, the other
    gets :class:`VersionConflict`. The customer gets an email for a reply and for the closing.
    """
    text = reply.strip() if reply is not None else None
    if text is not None and not text:
        raise InvalidInput("reply", "must not be empty")
    if text is not None and len(text) > MAX_REQUEST_TEXT:
        raise InvalidInput("reply", "at most {max} characters", max=MAX_REQUEST_TEXT)
    if status == RequestStatus.OPEN:
        raise InvalidInput("status", "a request can be moved to in_progress or closed")
    if status is None and text is None:
        raise InvalidInput("status", "send a status, a reply or both")
    current = adapters.repository.get_request(request_id)
    if expected_versions is not None and current.version not in expected_versions:
        raise VersionConflict(min(expected_versions, default=0), current.version)
    if current.status == RequestStatus.CLOSED:
        raise RequestClosed(request_id)
    now = adapters.clock()
    updated = current.model_copy(deep=True)
    if text is not None:
        updated.replies.append(RequestReply(at=now, text=text))
    if status is not None:
        updated.status = status
    updated.updated_at = now
    updated.version = current.version + 1
    entry = LedgerEntry(
        profile_id=current.profile_id,
        at=now,
        kind=LedgerKind.REQUEST_UPDATED,
        source=source,
        detail={
            "request_id": request_id,
            "type": current.type.value,
            "status": updated.status.value,
            "replied": "yes" if text is not None else "no",
        },
        event=_event(updated),
    )
    adapters.repository.save_request(updated, current.version, entry)
    logger.info(
        "request updated",
        extra={"request_id": request_id, "status": updated.status.value, "replied": text is not None},
    )
    if text is not None or updated.status == RequestStatus.CLOSED:
        _tell_customer(adapters, updated, text)
    return updated


def close_from_event(adapters: Adapters, request_id: str) -> CustomerRequest | None:
    """A ``ServiceRequestClosed`` from an outside service system closes the stored request too.

    Ids this product did not issue, unknown or already closed requests change nothing.
    """
    for _attempt in range(2):  # someone changed it in the same moment: once more on the fresh version
        try:
            return update_request(adapters, request_id, RequestStatus.CLOSED, None, None)
        except (NotFound, RequestClosed):
            return None
        except VersionConflict:
            continue
    return None


def _event(request: CustomerRequest) -> OutboxEvent:
    """RequestUpdated (a reply or in progress) or RequestClosed, carried by the update's ledger entry."""
    detail = {
        "requestId": request.id,
        "profileId": request.profile_id,
        "type": request.type.value,
        "status": request.status.value,
        "occurredAt": request.updated_at.isoformat(),
    }
    closed = request.status == RequestStatus.CLOSED
    return OutboxEvent(type="RequestClosed" if closed else "RequestUpdated", detail=detail)


def _tell_customer(adapters: Adapters, request: CustomerRequest, reply: str | None) -> None:
    """The customer's email about a reply or the closing, with a link back to their requests."""
    try:
        profile = adapters.repository.get(request.profile_id)
    except NotFound:
        return
    kind = adapters.catalog.request_type(request.type.value)
    email = adapters.renderer.render(
        "request_update",
        profile.locale,
        marketing=False,
        link=link(adapters, profile, Purpose.MANAGE, "/link") + "&next=/requests",
        reply=reply,
        closed=request.status == RequestStatus.CLOSED,
        submitted_at=request.created_at,
        type_label=kind.label.get(profile.locale)
        if (kind := adapters.catalog.request_type(request.type.value))
        else "",
        first_name=profile.value_of("first_name") or "",
        recipient=profile.email,
        company=adapters.settings.company_name,
    )
    adapters.mailer.send(profile, email, Source.CUSTOMER_SERVICE, now=adapters.clock())
