"""JSON API for the shop and customer service (behind IAM on API Gateway).

Thin: parse and validate the request (Powertools event handler with pydantic validation and the
OpenAPI document), call one use case of ``selfservice.usecases``, map the result; domain errors
become problem responses in ``selfservice.api_errors``. A body the API cannot read is refused before
routing (``selfservice.api_request``). Every operation declares each status it can answer.
"""

import json
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from selfservice import bootstrap, origin
from selfservice.api_errors import WITH_CONTENT, RequestRefused, documented, json_response, with_security_headers
from selfservice.api_errors import router as errors
from selfservice.api_models import NewProfile, ProfileOut, ProfileUpdate, history_out, openapi_as_answered
from selfservice.api_request import ANY_VERSION, expected_versions, parsed_json, readable
from selfservice.domain.errors import VersionConflict
from selfservice.domain.models import Profile, Source
from selfservice.observability import new_tracer
from selfservice.settings import get_settings
from selfservice.usecases import access, privacy, profiles
from selfservice.usecases.ports import Adapters

logger = Logger()
tracer = new_tracer()
metrics = Metrics()
app = APIGatewayHttpResolver(enable_validation=True, json_body_deserializer=parsed_json)
app.include_router(errors)

ProfileId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="Profile id")]
ETAG = {"ETag": {"description": 'The profile version, like "3" (for If-Match)', "schema": {"type": "string"}}}
NOT_FOUND, CONFLICT, STALE = HTTPStatus.NOT_FOUND, HTTPStatus.CONFLICT, HTTPStatus.PRECONDITION_FAILED
INVALID = HTTPStatus.UNPROCESSABLE_ENTITY


def adapters() -> Adapters:
    """The use cases' ports; without PUBLIC_BASE_URL, links in emails point at the domain of this request."""
    return bootstrap.adapters(origin.for_request(get_settings(), app.current_event.request_context.domain_name))


def _profile_response(profile: Profile, status: HTTPStatus = HTTPStatus.OK) -> Response[ProfileOut]:
    return json_response(status, ProfileOut.of(profile).model_dump(mode="json"), {"ETag": f'"{profile.version}"'})


def _caller() -> dict[str, str]:
    """Evidence for a consent switched through the API: the signed caller and the request id."""
    context = app.current_event.request_context
    return {"caller": context.authorizer.iam.user_arn or "unknown", "request_id": context.request_id or ""}


@app.get("/api/openapi.json", responses=documented(HTTPStatus.OK, "This document"))
def openapi_document() -> Response[dict[str, Any]]:
    document = json.loads(app.get_openapi_json_schema(title="Self-service center API", version="1.0.0"))
    return json_response(HTTPStatus.OK, openapi_as_answered(document))


@app.post(
    "/api/profiles",
    summary="Create a profile (only the email is required)",
    responses=documented(
        HTTPStatus.CREATED,
        "The new profile",
        *WITH_CONTENT,
        CONFLICT,
        headers={**ETAG, "Location": {"description": "Where the profile is", "schema": {"type": "string"}}},
    ),
)
def create_profile(body: NewProfile) -> Response[ProfileOut]:
    profile = profiles.create(adapters(), body.email, body.locale, body.initial_data(), body.subscribe, Source.API)
    metrics.add_metric(name="ProfileCreated", unit=MetricUnit.Count, value=1)
    response = _profile_response(profile, HTTPStatus.CREATED)
    response.headers["Location"] = f"/api/profiles/{profile.id}"
    return response


@app.get(
    "/api/profiles",
    summary="Find a profile by email address (read as profile creation reads it: case, Unicode forms, IDN)",
    responses=documented(HTTPStatus.OK, "The profile", NOT_FOUND, INVALID, headers=ETAG),
)
def find_profile(
    email: Annotated[str, Query(min_length=3, max_length=254, json_schema_extra={"format": "idn-email"})],
) -> Response[ProfileOut]:
    return _profile_response(profiles.find(adapters(), email))


@app.get(
    "/api/profiles/<profile_id>",
    summary="Read a profile",
    responses=documented(HTTPStatus.OK, "The profile", NOT_FOUND, INVALID, headers=ETAG),
)
def get_profile(profile_id: ProfileId) -> Response[ProfileOut]:
    return _profile_response(profiles.get(adapters(), profile_id))


@app.patch(
    "/api/profiles/<profile_id>",
    summary="Change fields, preferences or services (optimistic locking)",
    responses=documented(HTTPStatus.OK, "The changed profile", *WITH_CONTENT, NOT_FOUND, CONFLICT, STALE, headers=ETAG),
)
def patch_profile(
    profile_id: ProfileId,
    body: ProfileUpdate,
    if_match: Annotated[
        str | None,
        Header(
            alias="if-match",
            description='The version the change is based on, as the ETag gave it ("3"); or send "version" in the body',
        ),
    ] = None,
) -> Response[ProfileOut]:
    versions = expected_versions(if_match)
    patch = body.as_patch()
    ports, evidence = adapters(), _caller()
    if versions is ANY_VERSION:
        profile = profiles.update_by_id(ports, profile_id, patch, body.version, Source.API, evidence)
    elif len(versions) == 1:
        [version] = versions
        profile = profiles.update_by_id(ports, profile_id, patch, version, Source.API, evidence)
    else:  # no tag can match (412), or several versions would do: the current one, if it is among them
        current = profiles.get(ports, profile_id)
        if current.version not in versions:
            raise VersionConflict(min(versions, default=0), current.version)
        profile = profiles.update(ports, current, patch, current.version, Source.API, evidence)
    metrics.add_metric(name="ProfileUpdated", unit=MetricUnit.Count, value=1)
    return _profile_response(profile)


@app.delete(
    "/api/profiles/<profile_id>",
    summary="Erase the profile and everything stored about it",
    responses=documented(HTTPStatus.OK, "What was erased", NOT_FOUND, INVALID),
)
def delete_profile(profile_id: ProfileId) -> Response[dict[str, Any]]:
    erased = privacy.erase_by_id(adapters(), profile_id, Source.API)
    metrics.add_metric(name="ProfileErased", unit=MetricUnit.Count, value=1)
    return json_response(HTTPStatus.OK, {"erased": True, "items": erased})


@app.get(
    "/api/profiles/<profile_id>/history",
    summary="Changes, consents and emails, newest first",
    responses=documented(HTTPStatus.OK, "The ledger entries", NOT_FOUND, INVALID),
)
def profile_history(
    profile_id: ProfileId, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> Response[dict[str, Any]]:
    return json_response(HTTPStatus.OK, history_out(profiles.history(adapters(), profile_id, limit)))


@app.post(
    "/api/profiles/<profile_id>/self-service-link",
    summary="Email the customer a link to their pages (a body, if sent, is ignored but must be readable JSON)",
    responses=documented(HTTPStatus.ACCEPTED, "The email is on its way", *WITH_CONTENT, NOT_FOUND),
)
def send_self_service_link(profile_id: ProfileId) -> Response[dict[str, Any]]:
    outcome = access.send_self_service_link(adapters(), profile_id, Source.CUSTOMER_SERVICE)
    metrics.add_metric(name="SelfServiceLinkSent", unit=MetricUnit.Count, value=1)
    return json_response(HTTPStatus.ACCEPTED, {"sent": outcome.sent, "messageId": outcome.message_id})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Checked before routing: Powertools validates (parses) the body before any middleware runs.
    try:
        event = readable(event, get_settings().max_body_bytes)
    except RequestRefused as refused:
        return with_security_headers(refused.proxy_response())
    return with_security_headers(app.resolve(event, context))
