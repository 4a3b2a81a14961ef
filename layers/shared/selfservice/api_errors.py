"""The JSON API's answers to what goes wrong: never a 500 or a stack trace for something the caller can fix.

Every answer is a problem (``api_models.Problem``) with the status it has; :func:`documented`
declares them in the OpenAPI document, operation by operation.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.metrics import MetricUnit

from selfservice.api_models import GatewayError, Problem, problem, validation_problems
from selfservice.domain.errors import (
    AlreadyExists,
    InvalidInput,
    NotFound,
    NothingUploaded,
    RequestClosed,
    TemporarilyUnavailable,
    VersionConflict,
)
from selfservice.observability import log_unexpected
from selfservice.security_headers import TRANSPORT_SECURITY

router = Router()
logger = Logger(child=True)
metrics = Metrics()


class RequestRefused(Exception):
    """A request the API does not read: a body too large, of another type, not UTF-8 or nested too
    deep, or a malformed header. Nothing has run when it is raised; its answer names the problem."""

    def __init__(
        self, status: HTTPStatus, code: str, message: str, field: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(f"{field}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = dict(headers or {})

    def proxy_response(self) -> dict[str, Any]:
        """The answer as a Lambda proxy response, for a refusal before routing."""
        return {
            "statusCode": self.status.value,
            "headers": {"Content-Type": content_types.APPLICATION_JSON, **self.headers},
            "body": json.dumps(problem(self.code, self.message, self.field), separators=(",", ":")),
        }


def with_security_headers(response: dict[str, Any]) -> dict[str, Any]:
    """The proxy response with the headers every response of the service carries."""
    response["headers"] = {**(response.get("headers") or {}), **TRANSPORT_SECURITY}
    return response


def json_response(status: HTTPStatus, body: Any, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(status_code=status.value, content_type=content_types.APPLICATION_JSON, body=body, headers=headers)


@router.exception_handler(RequestRefused)
def refused(error: RequestRefused) -> Response[dict[str, Any]]:
    return json_response(error.status, problem(error.code, error.message, error.field), error.headers)


@router.exception_handler(RequestValidationError)
def invalid_request(error: RequestValidationError) -> Response[dict[str, Any]]:
    status, payload = validation_problems(error.errors())
    return json_response(status, payload)


@router.exception_handler(InvalidInput)
def invalid_input(error: InvalidInput) -> Response[dict[str, Any]]:
    return json_response(HTTPStatus.UNPROCESSABLE_ENTITY, problem("invalid_value", error.message, error.field))


@router.exception_handler(NotFound)
def not_found(error: NotFound) -> Response[dict[str, Any]]:
    return json_response(HTTPStatus.NOT_FOUND, problem("not_found", f"no such {error.what}"))


@router.exception_handler(RequestClosed)
def request_closed(_: RequestClosed) -> Response[dict[str, Any]]:
    return json_response(
        HTTPStatus.CONFLICT, problem("request_closed", "the request is closed; a new question is a new request")
    )


@router.exception_handler(NothingUploaded)
def nothing_uploaded(_: NothingUploaded) -> Response[dict[str, Any]]:
    return json_response(
        HTTPStatus.CONFLICT, problem("nothing_uploaded", "upload the file to the job's uploadUrl first, then start it")
    )


@router.exception_handler(AlreadyExists)
def already_exists(_: AlreadyExists) -> Response[dict[str, Any]]:
    return json_response(
        HTTPStatus.CONFLICT, problem("already_exists", "a profile with this email address exists", "email")
    )


@router.exception_handler(VersionConflict)
def version_conflict(error: VersionConflict) -> Response[dict[str, Any]]:
    metrics.add_metric(name="VersionConflict", unit=MetricUnit.Count, value=1)
    return json_response(
        HTTPStatus.PRECONDITION_FAILED,
        problem("version_conflict", "it was changed in the meantime; read it again and retry", "version"),
    )


@router.exception_handler(TemporarilyUnavailable)
def unavailable(_: TemporarilyUnavailable) -> Response[dict[str, Any]]:
    return json_response(
        HTTPStatus.SERVICE_UNAVAILABLE, problem("unavailable", "please retry shortly"), {"Retry-After": "2"}
    )


@router.exception_handler(Exception)
def unexpected(error: Exception) -> Response[dict[str, Any]]:
    """A bug, not bad input: a plain 500 without details for the caller, a log line without personal data."""
    log_unexpected(logger, error, "unexpected error in the API")
    return json_response(
        HTTPStatus.INTERNAL_SERVER_ERROR, problem("internal_error", "something went wrong on our side")
    )


@router.exception_handler(NotFoundError)
def no_route(_: NotFoundError) -> Response[dict[str, Any]]:
    return json_response(HTTPStatus.NOT_FOUND, problem("no_route", "no such endpoint"))


# What each error status means in this API, for the OpenAPI document.
_MEANING: dict[HTTPStatus, str] = {
    HTTPStatus.BAD_REQUEST: (
        "The request cannot be read: the body is not UTF-8, not JSON, or nests deeper than 32 levels; "
        "or a header is malformed (If-Match)"
    ),
    HTTPStatus.FORBIDDEN: "Sent by API Gateway: the request is not signed (SigV4) by a role allowed to call the API",
    HTTPStatus.NOT_FOUND: "No such profile, request, topic, export or import job",
    HTTPStatus.CONFLICT: (
        "A profile with this email address exists; or the request is closed; or the import job's file is not uploaded"
    ),
    HTTPStatus.PRECONDITION_FAILED: (
        "It was changed in the meantime (If-Match or version is not its current version): read it and retry"
    ),
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE: "The body is larger than the API reads (16 KiB; 4 MiB for an import)",
    HTTPStatus.UNSUPPORTED_MEDIA_TYPE: "The body is not sent as application/json (in UTF-8)",
    HTTPStatus.UNPROCESSABLE_ENTITY: "A value is missing or wrong: each problem names the field and the reason",
    HTTPStatus.TOO_MANY_REQUESTS: "Sent by API Gateway: over the route's request rate; retry later",
    HTTPStatus.INTERNAL_SERVER_ERROR: (
        "A bug on our side (no details); API Gateway answers {message} when the function itself failed"
    ),
    HTTPStatus.SERVICE_UNAVAILABLE: (
        "A dependency is throttling: retry after Retry-After seconds; API Gateway answers {message} "
        "when the function timed out"
    ),
}
_ANSWERED_BY_GATEWAY = frozenset({HTTPStatus.FORBIDDEN, HTTPStatus.TOO_MANY_REQUESTS})
_ANSWERED_BY_BOTH = frozenset({HTTPStatus.INTERNAL_SERVER_ERROR, HTTPStatus.SERVICE_UNAVAILABLE})
_HEADERS: dict[HTTPStatus, dict[str, Any]] = {
    HTTPStatus.UNSUPPORTED_MEDIA_TYPE: {
        "Accept": {"description": "The media type the body must have", "schema": {"type": "string"}},
        "Accept-Patch": {"description": "Sent for PATCH: the media type it reads", "schema": {"type": "string"}},
    },
    HTTPStatus.SERVICE_UNAVAILABLE: {
        "Retry-After": {"description": "Seconds to wait before retrying", "schema": {"type": "integer"}}
    },
}
CAN_FAIL: tuple[HTTPStatus, ...] = (
    HTTPStatus.FORBIDDEN,
    HTTPStatus.TOO_MANY_REQUESTS,
    HTTPStatus.INTERNAL_SERVER_ERROR,
    HTTPStatus.SERVICE_UNAVAILABLE,
)
"""What any operation of the API can answer, whatever it is asked."""
WITH_CONTENT: tuple[HTTPStatus, ...] = (
    HTTPStatus.BAD_REQUEST,
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
    HTTPStatus.UNPROCESSABLE_ENTITY,
)
"""What an operation that reads a body (POST, PATCH) answers to a body it cannot read."""


def documented(
    status: HTTPStatus, description: str, *errors: HTTPStatus, headers: Mapping[str, Any] | None = None
) -> dict[int, OpenAPIResponse]:
    """The OpenAPI responses of an operation: its success (the schema of the handler's return type)
    and each error it can answer, with the problem body the API sends, or API Gateway's body."""
    success: OpenAPIResponse = {"description": description}
    if headers:
        success["headers"] = dict(headers)
    responses: dict[int, OpenAPIResponse] = {status.value: success}
    for error in sorted({*errors, *CAN_FAIL}):
        model: Any = Problem
        if error in _ANSWERED_BY_GATEWAY:
            model = GatewayError
        elif error in _ANSWERED_BY_BOTH:
            model = Problem | GatewayError
        response: OpenAPIResponse = {
            "description": _MEANING[error],
            "content": {content_types.APPLICATION_JSON: {"model": model}},
        }
        if error in _HEADERS:
            response["headers"] = _HEADERS[error]
        responses[error.value] = response
    return responses
