"""Applying a change request to a profile: validation against the catalog and the list of changes.

The same :class:`ProfilePatch` serves the JSON API and the hosted pages, so both enforce the
same rules: unknown topics, services or fields are refused, hidden topics are never touched,
and a field's confirmed-at time moves only when its value actually changed.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StringConstraints

from selfservice.catalog import Catalog, FieldSpec
from selfservice.domain.errors import InvalidInput
from selfservice.domain.models import (
    Change,
    ChannelId,
    FieldValue,
    FieldValueType,
    Language,
    LedgerEntry,
    LedgerKind,
    Preferences,
    Profile,
    ServiceBooking,
    Source,
)

MAX_EMAIL_LENGTH = 254
EmailInput = Annotated[
    str,
    StringConstraints(min_length=3, max_length=MAX_EMAIL_LENGTH),
    Field(json_schema_extra={"format": "idn-email"}),  # checked by checked_email; the schema says what it takes
]
Id = Annotated[str, StringConstraints(min_length=1, max_length=64)]
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def _rfc3339(value: object) -> object:
    """A time arrives as a datetime (pages) or as RFC 3339 text with its offset (JSON, the schema's
    ``date-time``); a number or a date alone is no time, whatever pydantic would make of it."""
    if isinstance(value, dt.datetime) or (isinstance(value, str) and _RFC3339.fullmatch(value)):
        return value
    raise ValueError("must be a date and time with its offset, like 2026-12-24T18:00:00+01:00")


DateTimeInput = Annotated[dt.datetime, BeforeValidator(_rfc3339)]
ShortText = Annotated[str, StringConstraints(max_length=2000)]
FieldsInput = dict[Id, ShortText | list[Id] | None]
ServicesInput = dict[Id, Id | None]
_PHONE = re.compile(r"^\+[1-9][0-9]{6,14}$")


class _Input(BaseModel):
    # Validators are built when the first change is validated: a cold start that only reads pays nothing.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, defer_build=True)


class PreferencesPatch(_Input):
    """Only the keys present are changed; topics not named keep their state."""

    # Strict: a consent is true or false, never "yes", 1 or "on" read as true.
    topics: dict[Id, StrictBool] | None = Field(default=None, max_length=64)
    frequency: Id | None = None
    channels: dict[Id, list[ChannelId]] | None = Field(default=None, max_length=64)
    paused_until: DateTimeInput | None = None
    resume: StrictBool = Field(default=False, description="End a pause now (paused_until is cleared).")


class ProfilePatch(_Input):
    """A partial update. ``fields`` maps a catalog field id to its new value (null clears it);
    ``services`` maps a service id to the booked option (null cancels the booking)."""

    email: EmailInput | None = None
    locale: Language | None = None
    fields: FieldsInput | None = Field(default=None, max_length=64)
    preferences: PreferencesPatch | None = None
    services: ServicesInput | None = Field(default=None, max_length=64)


def checked_email(address: str, field: str = "email") -> str:
    """A syntactically valid address in its normal form, or :class:`InvalidInput`.

    The one normalisation of an address the service knows, for storing and for looking up alike:
    surrounding whitespace dropped, Unicode in NFC, the domain lower-cased and in Unicode (an IDN
    given as ``xn--`` punycode reads as the same domain). ``Profile.email_key`` lower-cases the
    result once more for uniqueness and lookup. No DNS lookup: the Lambda may have no internet route.
    """
    from email_validator import EmailNotValidError, validate_email  # imported by the first address checked

    try:
        return validate_email(address.strip(), check_deliverability=False).normalized
    except EmailNotValidError:
        raise InvalidInput(field, "this is not a valid email address") from None


def checked_field_value(spec: FieldSpec, raw: FieldValueType, today: dt.date) -> FieldValueType:
    """The value in its stored form, or :class:`InvalidInput` naming the field and the reason."""
    path = f"fields.{spec.id}"
    if spec.type == "multi_choice":
        values = [raw] if isinstance(raw, str) else list(raw)
        unknown = sorted(set(values) - spec.choice_ids())
        if unknown:
            raise InvalidInput(path, "unknown choice {choice}", choice=unknown[0])
        return sorted(set(values))
    if not isinstance(raw, str):
        raise InvalidInput(path, "must be a text value")
    value = raw.strip()
    if len(value) > spec.max_length:
        raise InvalidInput(path, "at most {max} characters", max=spec.max_length)
    if spec.type == "choice":
        if value not in spec.choice_ids():
            raise InvalidInput(path, "unknown choice {choice}", choice=value)
    elif spec.type == "date":
        try:
            day = dt.date.fromisoformat(value)
        except ValueError:
            raise InvalidInput(path, "must be a date like 1990-04-23") from None
        if not dt.date(1900, 1, 1) <= day <= today:
            raise InvalidInput(path, "must be a date between 1900 and today")
        value = day.isoformat()
    elif spec.type == "phone":
        value = re.sub(r"[\s()/-]", "", value)
        if value.startswith("00"):
            value = "+" + value[2:]
        if not _PHONE.match(value):
            raise InvalidInput(path, "must be a phone number in international form, like +49 151 23456789")
    elif spec.pattern and not re.fullmatch(spec.pattern, value):
        raise InvalidInput(path, "has an invalid format")
    if not value:
        raise InvalidInput(path, "must not be empty (send null to clear it)")
    return value


def _patch_fields(profile: Profile, patch: ProfilePatch, catalog: Catalog, now: dt.datetime) -> list[Change]:
    changes: list[Change] = []
    for field_id, raw in (patch.fields or {}).items():
        spec = catalog.field(field_id)
        if spec is None:
            raise InvalidInput(f"fields.{field_id}", "unknown field")
        before = profile.value_of(field_id)
        if raw is None or raw in ("", []):
            if before is not None:
                del profile.fields[field_id]
                changes.append(Change(field=f"fields.{field_id}", before=before, after=None))
            continue
        value = checked_field_value(spec, raw, now.date())
        if value != before:
            profile.fields[field_id] = FieldValue(value=value, confirmed_at=now)
            changes.append(Change(field=f"fields.{field_id}", before=before, after=value))
    return changes


def _patch_preferences(profile: Profile, patch: PreferencesPatch, catalog: Catalog, now: dt.datetime) -> list[Change]:
    changes: list[Change] = []
    prefs = profile.preferences
    for topic_id, on in (patch.topics or {}).items():
        topic = catalog.topic(topic_id)
        if topic is None:
            raise InvalidInput(f"preferences.topics.{topic_id}", "unknown topic")
        if topic.hidden:
            raise InvalidInput(f"preferences.topics.{topic_id}", "topic is not offered")
        before = prefs.topics.get(topic_id, False)
        if before != on:
            prefs.topics[topic_id] = on
            changes.append(Change(field=f"preferences.topics.{topic_id}", before=before, after=on))
    if patch.frequency is not None and patch.frequency != prefs.frequency:
        if catalog.frequency(patch.frequency) is None:
            raise InvalidInput("preferences.frequency", "unknown frequency {frequency}", frequency=patch.frequency)
        changes.append(Change(field="preferences.frequency", before=prefs.frequency, after=patch.frequency))
        prefs.frequency = patch.frequency
    for topic_id, channels in (patch.channels or {}).items():
        topic = catalog.topic(topic_id)
        if topic is None or topic.hidden:
            raise InvalidInput(f"preferences.channels.{topic_id}", "unknown topic")
        wanted = sorted(set(channels))
        if not wanted:
            raise InvalidInput(f"preferences.channels.{topic_id}", "choose at least one channel")
        for channel in wanted:
            if channel not in topic.channels:
                raise InvalidInput(
                    f"preferences.channels.{topic_id}", "{channel} is not offered for this topic", channel=channel
                )
        before_channels = prefs.channels_for(topic_id)
        if wanted != sorted(before_channels):
            prefs.channels[topic_id] = list(wanted)
            changes.append(Change(field=f"preferences.channels.{topic_id}", before=before_channels, after=wanted))
    if patch.resume and prefs.paused_until is not None:
        changes.append(Change(field="preferences.paused_until", before=prefs.paused_until.isoformat(), after=None))
        prefs.paused_until = None
    elif patch.paused_until is not None:
        until = patch.paused_until if patch.paused_until.tzinfo else patch.paused_until.replace(tzinfo=dt.UTC)
        if until <= now:
            raise InvalidInput("preferences.paused_until", "must be in the future")
        if until > now + dt.timedelta(days=366):
            raise InvalidInput("preferences.paused_until", "a pause lasts at most one year")
        before_pause = prefs.paused_until.isoformat() if prefs.paused_until else None
        prefs.paused_until = until
        changes.append(Change(field="preferences.paused_until", before=before_pause, after=until.isoformat()))
    return changes


def _patch_services(profile: Profile, patch: ProfilePatch, catalog: Catalog, now: dt.datetime) -> list[Change]:
    changes: list[Change] = []
    for service_id, option_id in (patch.services or {}).items():
        service = catalog.service(service_id)
        if service is None:
            raise InvalidInput(f"services.{service_id}", "unknown service")
        booking = profile.services.get(service_id)
        before = booking.option if booking else None
        if option_id is None:
            if booking is not None:
                del profile.services[service_id]
                changes.append(Change(field=f"services.{service_id}", before=before, after=None))
            continue
        if service.option(option_id) is None:
            raise InvalidInput(f"services.{service_id}", "unknown option {option}", option=option_id)
        if option_id == before:
            continue
        profile.services[service_id] = ServiceBooking(
            service_id=service_id,
            option=option_id,
            booked_at=booking.booked_at if booking else now,
            changed_at=now,
        )
        changes.append(Change(field=f"services.{service_id}", before=before, after=option_id))
    return changes


def _check_requirements(profile: Profile, catalog: Catalog) -> None:
    """Rules spanning several values: SMS needs a phone number, some services need fields."""
    for topic_id, channels in profile.preferences.channels.items():
        if "sms" in channels and not profile.phone:
            raise InvalidInput(f"preferences.channels.{topic_id}", "SMS needs a mobile number")
    for service_id in profile.services:
        service = catalog.service(service_id)
        for field_id in service.requires_fields if service else ():
            if profile.value_of(field_id) is None:
                raise InvalidInput(f"services.{service_id}", "this service needs your {needed}", needed=field_id)


def apply_patch(
    profile: Profile, patch: ProfilePatch, catalog: Catalog, now: dt.datetime
) -> tuple[Profile, list[Change]]:
    """Return the changed copy of ``profile`` and what changed; raise :class:`InvalidInput` on bad input.

    The input profile is not modified, so a refused patch leaves nothing half-applied.
    """
    updated = profile.model_copy(deep=True)
    changes: list[Change] = []
    if patch.email is not None:
        email = checked_email(patch.email)
        if email != updated.email:
            changes.append(Change(field="email", before=updated.email, after=email))
            updated.email = email
    if patch.locale is not None and patch.locale != updated.locale:
        changes.append(Change(field="locale", before=updated.locale, after=patch.locale))
        updated.locale = patch.locale
    changes += _patch_fields(updated, patch, catalog, now)
    if updated.verified_phone is not None and updated.phone != updated.verified_phone:
        # A new (or no) number starts the SMS double opt-in again: SMS goes only to a confirmed number.
        changes.append(Change(field="verified_phone", before=updated.verified_phone, after=None))
        updated.verified_phone = None
    if patch.preferences is not None:
        changes += _patch_preferences(updated, patch.preferences, catalog, now)
    changes += _patch_services(updated, patch, catalog, now)
    _check_requirements(updated, catalog)
    if changes:
        updated.updated_at = now
        updated.version = profile.version + 1
    return updated, changes


def default_preferences(catalog: Catalog) -> Preferences:
    return Preferences(frequency=catalog.default_frequency)


def describe(changes: list[Change]) -> dict[str, Any]:
    """Changes as ``{path: {"before": …, "after": …}}`` for events on the bus."""
    return {c.field: {"before": c.before, "after": c.after} for c in changes}


def mark_suppressed(profile: Profile, now: dt.datetime, reason: str) -> tuple[Profile, LedgerEntry]:
    """The profile kept from every marketing email (its address bounced, complained or is on the
    suppression list), and the ledger entry that says so."""
    updated = profile.model_copy(update={"suppressed": True, "version": profile.version + 1, "updated_at": now})
    entry = LedgerEntry(
        profile_id=profile.id,
        at=now,
        kind=LedgerKind.ADDRESS_SUPPRESSED,
        source=Source.SYSTEM,
        changes=[Change(field="suppressed", before=False, after=True)],
        detail={"reason": reason},
    )
    return updated, entry
