"""Customer requests for customer service: the open ones oldest first, one with its replies, a reply
or a new status (the customer sees both and gets an email)."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query
from aws_lambda_powertools.metrics import MetricUnit

from selfservice.api_errors import WITH_CONTENT, documented, json_response
from selfservice.api_models import RequestOut, RequestPage, RequestUpdate, decode_cursor, encode_cursor
from selfservice.api_request import expected_versions
from selfservice.api_routes.common import (
    CONFLICT,
    ETAG,
    IF_MATCH,
    INVALID,
    NOT_FOUND,
    STALE,
    adapters,
)
from selfservice.domain.models import REQUEST_ID_PATTERN, CustomerRequest, RequestStatus, RequestType
from selfservice.usecases import requests

router = Router()
metrics = Metrics()

RequestId = Annotated[str, Path(pattern=REQUEST_ID_PATTERN, description="Request id")]


def request_response(request: CustomerRequest) -> Response[RequestOut]:
    return json_response(
        HTTPStatus.OK, RequestOut.of(request).model_dump(mode="json"), {"ETag": f'"{request.version}"'}
    )


@router.get(
    "/api/requests",
    summary="Requests by status, oldest first, a page at a time",
    responses=documented(HTTPStatus.OK, "A page of requests", INVALID),
)
def list_requests(
    status: Annotated[RequestStatus, Query(description="Which requests")] = RequestStatus.OPEN,
    type: Annotated[RequestType | None, Query(description="Only this type")] = None,
    cursor: Annotated[str | None, Query(max_length=2048, description="The previous page's next")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = requests.PAGE_SIZE,
) -> Response[RequestPage]:
    found, following = requests.list_requests(adapters(router), status, type, decode_cursor(cursor), limit)
    page = RequestPage(items=[RequestOut.of(request) for request in found], next=encode_cursor(following))
    return json_response(HTTPStatus.OK, page.model_dump(mode="json"))


@router.get(
    "/api/requests/<request_id>",
    summary="A request with its replies",
    responses=documented(HTTPStatus.OK, "The request", NOT_FOUND, INVALID, headers=ETAG),
)
def get_request(request_id: RequestId) -> Response[RequestOut]:
    return request_response(requests.get_request(adapters(router), request_id))


@router.patch(
    "/api/requests/<request_id>",
    summary="Reply to a request and/or move it to in_progress or closed (the customer is told by email)",
    responses=documented(HTTPStatus.OK, "The changed request", *WITH_CONTENT, NOT_FOUND, CONFLICT, STALE, headers=ETAG),
)
def patch_request(
    request_id: RequestId,
    body: RequestUpdate,
    if_match: Annotated[str | None, Header(alias="if-match", description=IF_MATCH)] = None,
) -> Response[RequestOut]:
    status = RequestStatus(body.status) if body.status else None
    updated = requests.update_request(adapters(router), request_id, status, body.reply, expected_versions(if_match))
    metrics.add_metric(name="RequestUpdated", unit=MetricUnit.Count, value=1)
    return request_response(updated)
