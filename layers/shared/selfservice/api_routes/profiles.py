"""Profiles for the shop and customer service: create, find, read, change, erase, history, a link."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated, Any, Literal

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query
from aws_lambda_powertools.metrics import MetricUnit

from selfservice.api_errors import WITH_CONTENT, documented, json_response
from selfservice.api_models import EvidenceCheckOut, EvidenceClaim, NewProfile, ProfileOut, ProfileUpdate, history_out
from selfservice.api_routes.common import (
    CONFLICT,
    ETAG,
    IF_MATCH,
    INVALID,
    NOT_FOUND,
    STALE,
    adapters,
    caller,
    event_of,
    expected_version,
    pages,
)
from selfservice.domain.models import Profile, Source
from selfservice.domain.proof import ConsentProof
from selfservice.usecases import access, privacy, profiles, proof, sms
from selfservice.web import views
from selfservice.web.negotiation import preferred_language, wants_html

router = Router()
metrics = Metrics()

ProfileId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="Profile id")]


def profile_response(profile: Profile, status: HTTPStatus = HTTPStatus.OK) -> Response[ProfileOut]:
    return json_response(status, ProfileOut.of(profile).model_dump(mode="json"), {"ETag": f'"{profile.version}"'})


@router.post(
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
    ports = adapters(router)
    profile = profiles.create(ports, body.email, body.locale, body.initial_data(), body.subscribe, Source.API)
    metrics.add_metric(name="ProfileCreated", unit=MetricUnit.Count, value=1)
    response = profile_response(profile, HTTPStatus.CREATED)
    response.headers["Location"] = f"/api/profiles/{profile.id}"
    return response


@router.get(
    "/api/profiles",
    summary="Find a profile by email address (read as profile creation reads it: case, Unicode forms, IDN)",
    responses=documented(HTTPStatus.OK, "The profile", NOT_FOUND, INVALID, headers=ETAG),
)
def find_profile(
    email: Annotated[str, Query(min_length=3, max_length=254, json_schema_extra={"format": "idn-email"})],
) -> Response[ProfileOut]:
    return profile_response(profiles.find(adapters(router), email))


@router.get(
    "/api/profiles/<profile_id>",
    summary="Read a profile",
    responses=documented(HTTPStatus.OK, "The profile", NOT_FOUND, INVALID, headers=ETAG),
)
def get_profile(profile_id: ProfileId) -> Response[ProfileOut]:
    return profile_response(profiles.get(adapters(router), profile_id))


@router.patch(
    "/api/profiles/<profile_id>",
    summary="Change fields, preferences or services (optimistic locking)",
    responses=documented(HTTPStatus.OK, "The changed profile", *WITH_CONTENT, NOT_FOUND, CONFLICT, STALE, headers=ETAG),
)
def patch_profile(
    profile_id: ProfileId,
    body: ProfileUpdate,
    if_match: Annotated[
        str | None, Header(alias="if-match", description=IF_MATCH + '; or send "version" in the body')
    ] = None,
) -> Response[ProfileOut]:
    patch = body.as_patch()  # a wrong value is a 422 whatever the version
    ports = adapters(router)
    current = profiles.get(ports, profile_id)
    version = expected_version(if_match, current.version, body.version)
    profile = profiles.update(ports, current, patch, version, Source.API, caller(router))
    # SMS switched on (or a new number): the customer gets a code to confirm on their page.
    if sms.newly_wanted(current, profile):
        sms.offer_code(ports, profile, Source.API, client_ip=None)
    metrics.add_metric(name="ProfileUpdated", unit=MetricUnit.Count, value=1)
    return profile_response(profile)


@router.delete(
    "/api/profiles/<profile_id>",
    summary="Erase the profile and everything stored about it",
    responses=documented(HTTPStatus.OK, "What was erased", NOT_FOUND, INVALID),
)
def delete_profile(profile_id: ProfileId) -> Response[dict[str, Any]]:
    erased = privacy.erase_by_id(adapters(router), profile_id, Source.API)
    metrics.add_metric(name="ProfileErased", unit=MetricUnit.Count, value=1)
    return json_response(HTTPStatus.OK, {"erased": True, "items": erased})


@router.get(
    "/api/profiles/<profile_id>/history",
    summary="Changes, consents and emails, newest first",
    responses=documented(HTTPStatus.OK, "The ledger entries", NOT_FOUND, INVALID),
)
def profile_history(
    profile_id: ProfileId, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> Response[dict[str, Any]]:
    return json_response(HTTPStatus.OK, history_out(profiles.history(adapters(router), profile_id, limit)))


@router.post(
    "/api/profiles/<profile_id>/self-service-link",
    summary="Email the customer a link to their pages (a body, if sent, is ignored but must be readable JSON)",
    responses=documented(HTTPStatus.ACCEPTED, "The email is on its way", *WITH_CONTENT, NOT_FOUND),
)
def send_self_service_link(profile_id: ProfileId) -> Response[dict[str, Any]]:
    outcome = access.send_self_service_link(adapters(router), profile_id, Source.CUSTOMER_SERVICE)
    metrics.add_metric(name="SelfServiceLinkSent", unit=MetricUnit.Count, value=1)
    return json_response(HTTPStatus.ACCEPTED, {"sent": outcome.sent, "messageId": outcome.message_id})


def _proof_responses() -> dict[int, Any]:
    responses = documented(
        HTTPStatus.OK, "The consent proof, as JSON or as a print-ready HTML page", NOT_FOUND, INVALID
    )
    responses[HTTPStatus.OK.value]["content"] = {
        content_types.APPLICATION_JSON: {"model": ConsentProof},
        "text/html": {"schema": {"type": "string", "description": "The same document as a print-ready page"}},
    }
    return responses


@router.get(
    "/api/profiles/<profile_id>/consent-proof",
    summary=(
        "Every consent given or withdrawn, per topic and channel, with door, wording, confirmation message and "
        "evidence: JSON, or a print-ready HTML page with Accept: text/html (German unless lang or Accept-Language "
        "says English)"
    ),
    responses=_proof_responses(),
)
def consent_proof(
    profile_id: ProfileId,
    lang: Annotated[Literal["de", "en"] | None, Query(description="Language of the HTML page")] = None,
) -> Response[Any]:
    ports = adapters(router)
    document = proof.consent_proof(ports, profile_id)
    headers = event_of(router).headers
    if not wants_html(headers.get("accept") or ""):
        return json_response(HTTPStatus.OK, document.model_dump(mode="json"))
    language = lang or preferred_language(headers.get("accept-language") or "", ports.catalog.default_language)
    renderer = pages(router)
    _ = renderer.translator(language)
    body = renderer.render(
        "consent_proof",
        language,
        company=ports.settings.company_name,
        **views.consent_proof(document, ports.catalog, language, _),
    )
    return Response(
        status_code=HTTPStatus.OK.value,
        content_type="text/html; charset=utf-8",
        body=body,
        headers={"Content-Security-Policy": renderer.security_headers()["Content-Security-Policy"]},
    )


@router.post(
    "/api/profiles/<profile_id>/consent-proof/check",
    summary="Check a claimed IP address and user agent against the evidence of every consent (nothing is stored)",
    responses=documented(
        HTTPStatus.OK, "How many evidence items were checked, and the ones that match", *WITH_CONTENT, NOT_FOUND
    ),
)
def check_consent_evidence(profile_id: ProfileId, body: EvidenceClaim) -> Response[EvidenceCheckOut]:
    checked, matches = proof.check_claim(adapters(router), profile_id, body.ip, body.userAgent)
    answer = EvidenceCheckOut(
        checked=checked,
        matches=[{"entryId": m.entry_id, "at": m.at, "action": m.action, "evidence": m.role} for m in matches],
    )
    return json_response(HTTPStatus.OK, answer.model_dump(mode="json"))
