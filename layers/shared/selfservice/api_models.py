"""Shapes of the JSON API: what goes out, the PATCH body, and the error format.

Errors always look like ``{"error": code, "message": text, "problems": [{"field", "reason"}]}``
and never echo the submitted values (they may be personal data).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from http import HTTPStatus
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints

from selfservice.domain.changes import (
    MAX_EMAIL_LENGTH,
    FieldsInput,
    PreferencesPatch,
    ProfilePatch,
    ServicesInput,
    checked_email,
)
from selfservice.domain.models import (
    FieldValue,
    Language,
    LedgerEntry,
    Preferences,
    Profile,
    ServiceBooking,
    SubscriptionStatus,
)


class NewProfile(BaseModel):
    """Create a profile: only the email is required; the rest is optional initial data."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, defer_build=True)  # built at first POST

    email: Annotated[str, StringConstraints(min_length=3, max_length=MAX_EMAIL_LENGTH)]
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

    @classmethod
    def of(cls, profile: Profile) -> ProfileOut:
        return cls.model_validate(profile.model_dump(exclude={"token_version", "last_review_email_at"}))


def history_out(entries: list[LedgerEntry]) -> dict[str, Any]:
    return {"entries": [entry.model_dump(mode="json") for entry in entries]}


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
