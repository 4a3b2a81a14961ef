"""JSON API for the shop and customer service (behind IAM on API Gateway).

Thin: parse and validate the request (Powertools event handler with pydantic validation),
call one method of the shared ProfileService, map the result or the domain error.
"""

import json
from functools import lru_cache
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from selfservice import origin
from selfservice.api_models import ProfileOut, ProfileUpdate, history_out, problem, validation_problems
from selfservice.domain.errors import AlreadyExists, InvalidInput, NotFound, TemporarilyUnavailable, VersionConflict
from selfservice.domain.models import Source
from selfservice.observability import log_unexpected
from selfservice.service import NewProfile, ProfileService, build_service
from selfservice.settings import Settings, get_settings

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = APIGatewayHttpResolver(enable_validation=True)

ProfileId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="Profile id")]


def service() -> ProfileService:
    """The use cases; without PUBLIC_BASE_URL, links in emails point at the domain of this request."""
    return _service(origin.for_request(get_settings(), app.current_event.request_context.domain_name))


@lru_cache(maxsize=2)
def _service(settings: Settings) -> ProfileService:
    return build_service(settings)


def json_response(status: HTTPStatus, body: Any, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(status_code=status.value, content_type=content_types.APPLICATION_JSON, body=body, headers=headers)


def _profile_response(profile: Any, status: HTTPStatus = HTTPStatus.OK) -> Response[ProfileOut]:
    return json_response(status, ProfileOut.of(profile).model_dump(mode="json"), {"ETag": f'"{profile.version}"'})


def _if_match(value: str | None) -> int | None:
    if value is None:
        return None
    digits = value.strip().removeprefix("W/").strip('"')
    if not digits.isdigit():
        raise InvalidInput("If-Match", 'must be the profile version in quotes, like "3"')
    return int(digits)


@app.get("/api/openapi.json")
def openapi_document() -> Response[dict[str, Any]]:
    document = app.get_openapi_json_schema(title="Self-service center API", version="1.0.0")
    return json_response(HTTPStatus.OK, json.loads(document))


@app.post("/api/profiles", summary="Create a profile (only the email is required)")
def create_profile(body: NewProfile) -> Response[ProfileOut]:
    profile = service().create(body, Source.API)
    metrics.add_metric(name="ProfileCreated", unit=MetricUnit.Count, value=1)
    response = _profile_response(profile, HTTPStatus.CREATED)
    response.headers["Location"] = f"/api/profiles/{profile.id}"
    return response


@app.get("/api/profiles", summary="Find a profile by email address")
def find_profile(email: Annotated[str, Query(min_length=3, max_length=254)]) -> Response[ProfileOut]:
    return _profile_response(service().find(email))


@app.get("/api/profiles/<profile_id>", summary="Read a profile")
def get_profile(profile_id: ProfileId) -> Response[ProfileOut]:
    return _profile_response(service().get(profile_id))


@app.patch("/api/profiles/<profile_id>", summary="Change fields, preferences or services (optimistic locking)")
def patch_profile(
    profile_id: ProfileId,
    body: ProfileUpdate,
    if_match: Annotated[str | None, Header(alias="if-match", max_length=32)] = None,
) -> Response[ProfileOut]:
    expected = _if_match(if_match)
    if expected is None:
        expected = body.version
    profile = service().update(profile_id, body.as_patch(), expected, Source.API)
    metrics.add_metric(name="ProfileUpdated", unit=MetricUnit.Count, value=1)
    return _profile_response(profile)


@app.delete("/api/profiles/<profile_id>", summary="Erase the profile and everything stored about it")
def delete_profile(profile_id: ProfileId) -> Response[dict[str, Any]]:
    erased = service().delete(profile_id)
    metrics.add_metric(name="ProfileErased", unit=MetricUnit.Count, value=1)
    return json_response(HTTPStatus.OK, {"erased": True, "items": erased})


@app.get("/api/profiles/<profile_id>/history", summary="Changes, consents and emails, newest first")
def profile_history(
    profile_id: ProfileId, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> Response[dict[str, Any]]:
    return json_response(HTTPStatus.OK, history_out(service().history(profile_id, limit)))


@app.post("/api/profiles/<profile_id>/self-service-link", summary="Email the customer a link to their pages")
def send_self_service_link(profile_id: ProfileId) -> Response[dict[str, Any]]:
    outcome = service().send_self_service_link(profile_id, Source.CUSTOMER_SERVICE)
    metrics.add_metric(name="SelfServiceLinkSent", unit=MetricUnit.Count, value=1)
    return json_response(HTTPStatus.ACCEPTED, {"sent": outcome.sent, "messageId": outcome.message_id})


# --- error mapping: never a 500 or a stack trace for something the caller can fix -----------
@app.exception_handler(RequestValidationError)
def invalid_request(error: RequestValidationError) -> Response[dict[str, Any]]:
    status, payload = validation_problems(error.errors())
    return json_response(status, payload)


@app.exception_handler(InvalidInput)
def invalid_input(error: InvalidInput) -> Response[dict[str, Any]]:
    return json_response(HTTPStatus.UNPROCESSABLE_ENTITY, problem("invalid_value", error.message, error.field))


@app.exception_handler(NotFound)
def not_found(_: NotFound) -> Response[dict[str, Any]]:
    return json_response(HTTPStatus.NOT_FOUND, problem("not_found", "no such profile"))


@app.exception_handler(AlreadyExists)
def already_exists(_: AlreadyExists) -> Response[dict[str, Any]]:
    return json_response(
        HTTPStatus.CONFLICT, problem("already_exists", "a profile with this email address exists", "email")
    )


@app.exception_handler(VersionConflict)
def version_conflict(error: VersionConflict) -> Response[dict[str, Any]]:
    metrics.add_metric(name="VersionConflict", unit=MetricUnit.Count, value=1)
    return json_response(
        HTTPStatus.PRECONDITION_FAILED,
        problem("version_conflict", "the profile was changed in the meantime; read it again and retry", "version"),
    )


@app.exception_handler(TemporarilyUnavailable)
def unavailable(_: TemporarilyUnavailable) -> Response[dict[str, Any]]:
    return json_response(
        HTTPStatus.SERVICE_UNAVAILABLE, problem("unavailable", "please retry shortly"), {"Retry-After": "2"}
    )


@app.exception_handler(Exception)
def unexpected(error: Exception) -> Response[dict[str, Any]]:
    """A bug, not bad input: a plain 500 without details for the caller, a log line without personal data."""
    log_unexpected(logger, error, "unexpected error in the API")
    return json_response(
        HTTPStatus.INTERNAL_SERVER_ERROR, problem("internal_error", "something went wrong on our side")
    )


@app.not_found
def no_route(_: Exception) -> Response[dict[str, Any]]:
    return json_response(HTTPStatus.NOT_FOUND, problem("no_route", "no such endpoint"))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Checked before routing: Powertools validates (parses) the body before any middleware runs.
    if len(event.get("body") or "") > get_settings().max_body_bytes:
        return {
            "statusCode": HTTPStatus.REQUEST_ENTITY_TOO_LARGE.value,
            "headers": {"Content-Type": content_types.APPLICATION_JSON},
            "body": json.dumps(problem("body_too_large", "the request body is too large", "body")),
        }
    return app.resolve(event, context)
