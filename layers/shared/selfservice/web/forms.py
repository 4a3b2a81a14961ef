"""Turning submitted forms into the same ProfilePatch the JSON API uses, with errors per form field.

Every field is checked, so the customer sees all problems at once, each next to its field.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from email.parser import BytesParser
from email.policy import default
from urllib.parse import parse_qs

from selfservice.catalog import Catalog
from selfservice.domain.changes import PreferencesPatch, ProfilePatch, checked_email, checked_field_value
from selfservice.domain.errors import InvalidInput
from selfservice.domain.models import FieldValueType, Profile, RequestType
from selfservice.usecases.subscription import MAX_NOTE
from selfservice.web import messages

MAX_FORM_BYTES = 16_384
MAX_REQUEST_MESSAGE = 4000
PAUSE_WEEKS = (0, 1, 2, 4, 8, 12, 26)

Translate = Callable[[str], str]
FormData = dict[str, list[str]]


class FormErrors(Exception):
    """The form has errors; ``errors`` maps form field names to translated messages."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(", ".join(errors))
        self.errors = errors


def parse_form(body: str | None) -> FormData:
    if not body:
        return {}
    return parse_qs(body[:MAX_FORM_BYTES], keep_blank_values=True, max_num_fields=200)


def parse_multipart_form(body: bytes, content_type: str) -> FormData:
    """A ``multipart/form-data`` body's text fields (RFC 8058 allows it for one-click unsubscribe).

    File parts are ignored; an unreadable body is an empty form.
    """
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = BytesParser(policy=default).parsebytes(head + body[:MAX_FORM_BYTES])
    form: FormData = {}
    if not message.is_multipart():
        return form
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or part.get_filename() is not None or part.get_content_maintype() != "text":
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            form.setdefault(name, []).append(payload.decode(part.get_content_charset() or "utf-8", "replace"))
    return form


def first(form: FormData, name: str) -> str:
    values = form.get(name)
    return values[0].strip() if values else ""


def message_of(error: InvalidInput, translate: Translate, catalog: Catalog | None = None, language: str = "en") -> str:
    """The page's full sentence for a domain error, naming the field (see :mod:`selfservice.web.messages`)."""
    return messages.sentence(error, translate, catalog, language)


def email_address(form: FormData, translate: Translate) -> str:
    """The form's address in the domain's normal form (the domain's check), or FormErrors for ``email``."""
    raw = first(form, "email")
    if not raw:
        raise FormErrors({"email": translate("Please enter your email address, like name@example.com.")})
    try:
        return checked_email(raw)
    except InvalidInput as error:
        raise FormErrors({"email": message_of(error, translate)}) from None


def version_of(form: FormData) -> int | None:
    raw = first(form, "version")
    return int(raw) if raw.isdigit() else None


def personal_data_patch(
    form: FormData, catalog: Catalog, today: dt.date, translate: Translate, language: str = "en"
) -> ProfilePatch:
    """Every catalog field on the page; an empty value clears the field.

    Required fields are asked for (marked, and listed after saving), never a reason to refuse
    saving what the customer did enter.
    """
    values: dict[str, FieldValueType | None] = {}
    errors: dict[str, str] = {}
    for spec in catalog.fields:
        raw: FieldValueType = (
            [v for v in form.get(spec.id, []) if v] if spec.type == "multi_choice" else first(form, spec.id)
        )
        if not raw:
            values[spec.id] = None
            continue
        try:
            values[spec.id] = checked_field_value(spec, raw, today)
        except InvalidInput as error:
            errors[spec.id] = message_of(error, translate, catalog, language)
    if errors:
        raise FormErrors(errors)
    return ProfilePatch(fields=values)


def communication_patch(
    form: FormData, profile: Profile, catalog: Catalog, now: dt.datetime, translate: Translate, language: str = "en"
) -> ProfilePatch:
    """Only the topics shown on the page (visible ones) are touched; hidden topics keep their state.

    Without a subscription the page shows no topics in this form (they are chosen by subscribing
    again), so a form without ``topics_shown`` leaves every topic as it is.
    """
    chosen = set(form.get("topic", []))
    topics_shown = first(form, "topics_shown") == "1"
    errors: dict[str, str] = {}
    topics: dict[str, bool] = {}
    channels: dict[str, list[str]] = {}
    for topic in catalog.visible_topics():
        topics[topic.id] = topic.id in chosen
        if len(topic.channels) > 1:
            picked = [c for c in form.get(f"channel-{topic.id}", []) if c in topic.channels]
            name = topic.name.get(language)
            if topic.id in chosen and not picked:
                errors[f"channel-{topic.id}"] = translate("Please choose at least one channel for “{field}”.").format(
                    field=name
                )
            elif "sms" in picked and not profile.phone:
                errors[f"channel-{topic.id}"] = translate(
                    "SMS for “{field}” needs your mobile number. Please add it under Personal data first."
                ).format(field=name)
            elif picked:
                channels[topic.id] = sorted(picked)
    frequency = first(form, "frequency") or profile.preferences.frequency
    if catalog.frequency(frequency) is None:
        errors["frequency"] = translate("Please choose how often you would like to hear from us.")
    weeks_raw = first(form, "pause_weeks") or "0"
    weeks = int(weeks_raw) if weeks_raw.isdigit() else -1
    if weeks not in PAUSE_WEEKS:
        errors["pause_weeks"] = translate("Please choose the length of the pause from the list.")
    if errors:
        raise FormErrors(errors)
    preferences = PreferencesPatch(
        topics=topics if topics_shown else None,
        frequency=frequency,
        channels=channels or None,
        paused_until=now + dt.timedelta(weeks=weeks) if weeks > 0 else None,
        resume=first(form, "resume") == "1" and weeks == 0,
    )
    return ProfilePatch(preferences=preferences)


def services_patch(form: FormData, catalog: Catalog, translate: Translate, language: str = "en") -> ProfilePatch:
    services: dict[str, str | None] = {}
    errors: dict[str, str] = {}
    for service in catalog.services:
        option = first(form, service.id)
        if option and service.option(option) is None:
            errors[service.id] = translate("Please choose an option for “{field}” from the list.").format(
                field=service.name.get(language)
            )
        services[service.id] = option or None
    if errors:
        raise FormErrors(errors)
    return ProfilePatch(services=services)


def customer_request(form: FormData, translate: Translate) -> tuple[RequestType, str]:
    errors: dict[str, str] = {}
    try:
        request_type = RequestType(first(form, "type"))
    except ValueError:
        errors["type"] = translate("Please choose what your request is about.")
        request_type = RequestType.QUESTION
    message = first(form, "message")
    if not message:
        errors["message"] = translate("Please write your message.")
    elif len(message) > MAX_REQUEST_MESSAGE:
        errors["message"] = translate("Please shorten your message to {max} characters.").format(
            max=MAX_REQUEST_MESSAGE
        )
    if errors:
        raise FormErrors(errors)
    return request_type, message


def unsubscribe_note(form: FormData) -> str:
    """The optional words under "something else", cut to the characters the use case keeps.

    Kept only with that reason; it goes into the withdrawal's ledger entry and nowhere else (never
    into a log line or an event).
    """
    if first(form, "reason") != "other":
        return ""
    return " ".join(first(form, "reason_text").split())[:MAX_NOTE]


def opt_down_patch(form: FormData, catalog: Catalog, now: dt.datetime) -> ProfilePatch:
    """The unsubscribe page's "less instead of nothing": visible topics kept, frequency, pause.

    Channels are not on that page and stay as they are; an unknown value falls back to no change.
    """
    chosen = set(form.get("topic", []))
    frequency = first(form, "frequency")
    weeks_raw = first(form, "pause_weeks") or "0"
    weeks = int(weeks_raw) if weeks_raw.isdigit() and int(weeks_raw) in PAUSE_WEEKS else 0
    return ProfilePatch(
        preferences=PreferencesPatch(
            topics={topic.id: topic.id in chosen for topic in catalog.visible_topics()},
            frequency=frequency if catalog.frequency(frequency) else None,
            paused_until=now + dt.timedelta(weeks=weeks) if weeks > 0 else None,
        )
    )
