"""Shapes of the JSON API: what goes out, the PATCH body, and the error format.

Errors always look like ``{"error": code, "message": text, "problems": [{"field", "reason"}]}``
and never echo the submitted values (they may be personal data).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Sequence
from http import HTTPStatus
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints

from selfservice.domain.changes import (
    EmailInput,
    FieldsInput,
    PreferencesPatch,
    ProfilePatch,
    ServicesInput,
    checked_email,
)
from selfservice.domain.errors import InvalidInput
from selfservice.domain.models import (
    MAX_REQUEST_TEXT,
    CustomerRequest,
    FieldValue,
    Language,
    LedgerEntry,
    Preferences,
    Profile,
    RequestStatus,
    RequestType,
    ServiceBooking,
    SubscriptionStatus,
)
from selfservice.domain.sms import sms_state


class NewProfile(BaseModel):
    """Create a profile: only the email is required; the rest is optional initial data."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        defer_build=True,  # built at first POST
        json_schema_extra={
            "examples": [
                {
                    "email": "kim@example.com",
                    "locale": "en",
                    "fields": {"first_name": "Kim", "city": "Berlin"},
                    "preferences": {"frequency": "monthly", "channels": {"offers": ["email"]}},
                    "services": {"delivery_plus": "monthly"},
                    "subscribe": ["news", "offers"],
                }
            ]
        },
    )

    email: EmailInput
    locale: Language = "de"
    fields: FieldsInput | None = Field(default=None, max_length=64)
    preferences: PreferencesPatch | None = None
    services: ServicesInput | None = Field(default=None, max_length=64)
    subscribe: list[Annotated[str, StringConstraints(min_length=1, max_length=64)]] | None = Field(
        default=None,
        max_length=32,
        description="Topics the customer asked for: the profile stays pending until they confirm the email.",
    )

    def initial_data(self) -> ProfilePatch:
        return ProfilePatch(fields=self.fields, preferences=self.preferences, services=self.services)


class ProfileUpdate(ProfilePatch):
    """PATCH body: a partial update plus, optionally, the version it was based on (or send If-Match)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"fields": {"city": "Leipzig", "postal_code": "04109"}, "preferences": {"topics": {"events": True}}}
            ]
        }
    )

    version: StrictInt | None = Field(default=None, ge=1)

    def as_patch(self) -> ProfilePatch:
        """The change as the domain takes it. A new address is checked here, before the version is
        compared: what the request says wrong is a 422 even when it is also stale."""
        patch = ProfilePatch.model_validate(self.model_dump(exclude={"version"}, exclude_unset=True))
        if patch.email is not None:
            patch.email = checked_email(patch.email)
        return patch


class ProfileOut(BaseModel):
    id: str
    email: str
    locale: Language
    status: SubscriptionStatus
    fields: dict[str, FieldValue]
    preferences: Preferences
    services: dict[str, ServiceBooking]
    consent_version: str | None
    suppressed: bool
    created_at: dt.datetime
    updated_at: dt.datetime
    last_reviewed_at: dt.datetime | None
    version: int
    verified_phone: str | None = Field(
        description="The mobile number the customer confirmed with an SMS code; SMS goes only to it"
    )
    sms_channel: Literal["off", "pending", "active"] = Field(
        description=(
            "SMS for the topics whose preferences.channels include sms: off (none), pending (the customer "
            "has not entered the code sent to fields.phone yet: nothing is sent by SMS), active"
        )
    )

    @classmethod
    def of(cls, profile: Profile) -> ProfileOut:
        values = profile.model_dump(exclude={"token_version", "last_review_email_at"})
        return cls.model_validate({**values, "sms_channel": sms_state(profile)})


def history_out(entries: list[LedgerEntry]) -> dict[str, Any]:
    return {"entries": [entry.model_dump(mode="json") for entry in entries]}


class FieldProblem(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    field: str = Field(
        description="What is wrong: a body path (`fields.city`, `body.email`), a parameter (`query.email`) or a header"
    )
    reason: str


class Problem(BaseModel):
    """The body of every error the API itself answers."""

    model_config = ConfigDict(extra="forbid", defer_build=True)  # only the OpenAPI document needs it

    error: str = Field(description="Machine-readable code, e.g. `invalid_json`, `unsupported_media_type`, `not_found`")
    message: str = Field(description="What is wrong, in English; never the submitted values")
    problems: list[FieldProblem] = Field(
        default_factory=list, description="One entry per wrong field or header; absent when the error concerns none"
    )


class GatewayError(BaseModel):
    """The body API Gateway itself answers with (IAM refused, throttled, the function failed or timed out)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    message: str


def problem(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"error": code, "message": message}
    if field:
        body["problems"] = [{"field": field, "reason": message}]
    return body


def _path(location: Sequence[Any]) -> str:
    return ".".join(str(part) for part in location)


def validation_problems(errors: Sequence[Any]) -> tuple[HTTPStatus, dict[str, Any]]:
    """Map pydantic/Powertools validation errors to 400 (unreadable body) or 422 (wrong values)."""
    if any(error.get("type") == "json_invalid" for error in errors):
        return HTTPStatus.BAD_REQUEST, problem("invalid_json", "the body is not valid JSON", "body")
    problems = [{"field": _path(error.get("loc", ())), "reason": str(error.get("msg", "invalid"))} for error in errors]
    return HTTPStatus.UNPROCESSABLE_ENTITY, {
        "error": "invalid_request",
        "message": "the request has invalid values",
        "problems": problems,
    }


_SCHEMA_REF = "#/components/schemas/"
_POWERTOOLS_VALIDATION_ERROR = f"{_SCHEMA_REF}HTTPValidationError"


def openapi_as_answered(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` (as Powertools generates it) with only the answers the API gives.

    Powertools declares a 422 with its own validation error shape on every operation; this API
    answers :class:`Problem` instead, and each operation declares its 422 where it can answer one.
    What is left of Powertools' declaration (an operation that has no 422) goes, and so do the
    component schemas nothing refers to any more.
    """
    for operation in (op for path in document["paths"].values() for op in path.values()):
        responses: dict[str, Any] = operation["responses"]
        for status, response in list(responses.items()):
            schema = response.get("content", {}).get("application/json", {}).get("schema", {})
            if schema.get("$ref") == _POWERTOOLS_VALIDATION_ERROR:
                del responses[status]
    schemas: dict[str, Any] = document.get("components", {}).get("schemas", {})
    used: set[str] = set()
    pending: list[Any] = [document["paths"]]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            reference = node.get("$ref")
            if isinstance(reference, str) and reference.startswith(_SCHEMA_REF):
                name = reference.removeprefix(_SCHEMA_REF)
                if name not in used and name in schemas:
                    used.add(name)
                    pending.append(schemas[name])
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    for name in set(schemas) - used:
        del schemas[name]
    return document


# --- imports ------------------------------------------------------------------------------------

_IMPORT_ROW_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": (
        "One subscriber. Each row is checked on its own, so the row's fields are described here, not "
        "enforced by the document: a row with a wrong or missing value is reported in `rejected` with "
        "its problems, and the other rows still import."
    ),
    "properties": {
        "email": {"description": "The address (string, required)"},
        "locale": {"description": "`de` or `en`, for a new profile; default: the catalog's language"},
        "fields": {"description": "Catalog fields (object of strings or lists of strings); only empty ones are filled"},
        "topics": {"description": "Topic ids (array of 1 to 64 strings, required)"},
        "consent": {
            "description": (
                "The consent given elsewhere (object, required): `givenAt` (date-time with offset, not in "
                "the future), `source` (string, where), `version` (a consent wording version of the "
                "catalog), `evidence` (optional object of up to 20 strings: what proves it)"
            )
        },
    },
}


class ImportBody(BaseModel):
    """Existing subscribers with the proof of their consent (README: Import)."""

    model_config = ConfigDict(
        extra="forbid",
        defer_build=True,
        json_schema_extra={
            "examples": [
                {
                    "profiles": [
                        {
                            "email": "kim@example.com",
                            "locale": "en",
                            "fields": {"first_name": "Kim"},
                            "topics": ["news"],
                            "consent": {
                                "givenAt": "2025-03-02T10:15:00+01:00",
                                "source": "newsletter form www.example.com",
                                "version": "2026-01",
                                "evidence": {"confirmedAt": "2025-03-02T10:20:00+01:00"},
                            },
                        }
                    ]
                }
            ]
        },
    )

    profiles: list[dict[str, Any]] = Field(
        min_length=1, max_length=1000, json_schema_extra={"items": _IMPORT_ROW_SCHEMA}
    )


class RejectedRow(BaseModel):
    index: int = Field(description="The row's position in `profiles`, from 0")
    problems: list[FieldProblem]


class ImportResult(BaseModel):
    created: int
    updated: int
    unchanged: int = Field(description="Rows that changed nothing: already so, unsubscribed, suppressed, or older")
    rejected: list[RejectedRow]


class NewImportJob(BaseModel):
    id: str
    status: Literal["awaiting_upload"]
    uploadUrl: str = Field(
        description="PUT the JSON Lines file here (Content-Type: application/jsonl), within the hour"
    )
    uploadExpiresAt: dt.datetime


class ImportJobOut(BaseModel):
    id: str
    status: Literal["awaiting_upload", "running", "done", "failed"]
    createdAt: str
    rows: int = Field(description="Lines with a row in the file (known once planned)")
    batches: int
    batchesDone: int
    created: int
    updated: int
    unchanged: int
    rejected: int
    reportUrl: str | None = Field(description="Once done: the report (counts and every refused line), for an hour")
    error: str | None = None


# --- customer requests -------------------------------------------------------------------------


class ReplyOut(BaseModel):
    at: dt.datetime
    text: str


class RequestOut(BaseModel):
    """A customer's request as customer service sees it (README: Requests)."""

    id: str
    profileId: str
    type: RequestType
    message: str
    status: RequestStatus
    createdAt: dt.datetime
    updatedAt: dt.datetime
    replies: list[ReplyOut]

    @classmethod
    def of(cls, request: CustomerRequest) -> RequestOut:
        return cls(
            id=request.id,
            profileId=request.profile_id,
            type=request.type,
            message=request.message,
            status=request.status,
            createdAt=request.created_at,
            updatedAt=request.updated_at,
            replies=[ReplyOut(at=reply.at, text=reply.text) for reply in request.replies],
        )


class RequestPage(BaseModel):
    items: list[RequestOut]
    next: str | None = Field(description="Pass as ?cursor= for the next page; null on the last page")


class RequestUpdate(BaseModel):
    """Move a request on and/or reply to it (either or both)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"status": "closed", "reply": "We have changed your address."}]},
    )

    status: Literal["in_progress", "closed"] | None = None
    reply: Annotated[str, StringConstraints(min_length=1, max_length=MAX_REQUEST_TEXT)] | None = Field(
        default=None, description="Shown to the customer on their requests page and emailed to them"
    )


def encode_cursor(key: dict[str, Any] | None) -> str | None:
    """A list's continuation as an opaque string."""
    if key is None:
        return None
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> dict[str, Any] | None:
    """The continuation a cursor stands for; InvalidInput for anything this API did not hand out."""
    if not cursor:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("cursor", "is not a cursor of this list") from None
    if not isinstance(key, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in key.items()):
        raise InvalidInput("cursor", "is not a cursor of this list")
    return key


# --- consent proof ---------------------------------------------------------------------------


class EvidenceClaim(BaseModel):
    """An IP address and user agent someone claims a consent was given from."""

    model_config = ConfigDict(
        extra="forbid",
        defer_build=True,
        json_schema_extra={"examples": [{"ip": "203.0.113.7", "userAgent": "Mozilla/5.0 (X11; Linux x86_64)"}]},
    )

    ip: Annotated[str, StringConstraints(min_length=2, max_length=64)] = Field(
        description="IPv4 or IPv6 address",
        json_schema_extra={"anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]},
    )
    userAgent: Annotated[str, StringConstraints(max_length=2048)] = Field(
        description="The User-Agent header exactly as the browser sent it"
    )


class EvidenceMatchOut(BaseModel):
    entryId: str
    at: dt.datetime
    action: Literal["given", "withdrawn"]
    evidence: Literal["action", "request"] = Field(
        description="action: the click that gave or withdrew; request: the form that asked for the double opt-in"
    )


class EvidenceCheckOut(BaseModel):
    checked: int = Field(description="How many evidence items the profile's consents hold")
    matches: list[EvidenceMatchOut]
