"""What every route of the JSON API shares: its ports, its caller, the version headers."""

from __future__ import annotations

from http import HTTPStatus
from typing import cast

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

from selfservice import bootstrap, origin
from selfservice.api_request import ANY_VERSION, expected_versions
from selfservice.domain.errors import VersionConflict
from selfservice.settings import get_settings
from selfservice.usecases.ports import Adapters
from selfservice.web.render import PageRenderer

NOT_FOUND, CONFLICT, STALE = HTTPStatus.NOT_FOUND, HTTPStatus.CONFLICT, HTTPStatus.PRECONDITION_FAILED
INVALID = HTTPStatus.UNPROCESSABLE_ENTITY
ETAG = {"ETag": {"description": 'The version, like "3" (for If-Match)', "schema": {"type": "string"}}}
IF_MATCH = 'The version the change is based on, as the ETag gave it ("3")'


def event_of(router: Router) -> APIGatewayProxyEventV2:
    return cast(APIGatewayProxyEventV2, router.current_event)


def adapters(router: Router) -> Adapters:
    """The use cases' ports; without PUBLIC_BASE_URL, links in emails point at the domain of this request."""
    return bootstrap.adapters(origin.for_request(get_settings(), event_of(router).request_context.domain_name))


def pages(router: Router) -> PageRenderer:
    """The page renderer (templates, page catalogs, stylesheet) for documents the API answers as HTML."""
    return bootstrap.wiring(origin.for_request(get_settings(), event_of(router).request_context.domain_name)).pages


def caller(router: Router) -> dict[str, str]:
    """Evidence of who changed something through the API: the signed caller and the request id."""
    context = event_of(router).request_context
    return {"caller": context.authorizer.iam.user_arn or "unknown", "request_id": context.request_id or ""}


def expected_version(if_match: str | None, current: int, fallback: int | None = None) -> int | None:
    """The version a change may apply to, from If-Match (RFC 9110) or ``fallback`` (a body's version).

    Several tags: the current version if it is among them. No tag that can match: VersionConflict.
    """
    versions = expected_versions(if_match)
    if versions is ANY_VERSION:
        return fallback
    if current in versions:
        return current
    raise VersionConflict(min(versions, default=0), current)
