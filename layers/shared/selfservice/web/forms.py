"""Turning submitted forms into the same ProfilePatch the JSON API uses, with errors per form field.

Every field is checked, so the customer sees all problems at once, each next to its field.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
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

MAX_FORM_BYTES = 256 * 1024
"""The largest form body read. The largest form a page sends is a request of 4000 characters, at
most about 48 KB encoded (an emoji is twelve bytes in a form body): up to this size a message that
is too long comes back with its error and the text kept; a larger body is refused as a whole."""
MAX_FORM_FIELDS = 200
MAX_REQUEST_MESSAGE = 4000
PAUSE_WEEKS = (0, 1, 2, 4, 8, 12, 26)
_PAUSE_CHOICES = {str(weeks): weeks for weeks in PAUSE_WEEKS}
_VERSION = re.compile(r"[0-9]{1,9}")

Translate = Callable[[str], str]
FormData = dict[str, list[str]]


class FormErrors(Exception):
    """The form has errors; ``errors`` maps form field names to translated messages."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(", ".join(errors))
        self.errors = errors


class UnreadableForm(Exception):
    """A body no page of ours sends: not UTF-8 (also inside percent escapes), not base64 where it
    says so, more than :data:`MAX_FORM_FIELDS` fields, or (``too_large``) over :data:`MAX_FORM_BYTES`."""

    def __init__(self, *, too_large: bool = False) -> None:
        super().__init__("form body too large" if too_large else "unreadable form body")
        self.too_large = too_large


def _body_bytes(body: str, base64_encoded: bool) -> bytes:
    """The body as sent, within :data:`MAX_FORM_BYTES` (else :class:`UnreadableForm`, too large)."""
    if len(body) > MAX_FORM_BYTES * 4 // 3 + 4:
        raise UnreadableForm(too_large=True)
    try:
        data = base64.b64decode(body, validate=True) if base64_encoded else body.encode("utf-8", "surrogatepass")
    except binascii.Error:
        raise UnreadableForm from None
    if len(data) > MAX_FORM_BYTES:
        raise UnreadableForm(too_large=True)
    return data


def parse_form(body: str | None, base64_encoded: bool = False) -> FormData:
    """The fields of an ``application/x-www-form-urlencoded`` body, or :class:`UnreadableForm`.

    Read whole or not at all: a body is never cut (a cut could end inside a character or a value).
    """
    if not body:
        return {}
    data = _body_bytes(body, base64_encoded)
    try:
        return parse_qs(data.decode("utf-8"), keep_blank_values=True, errors="strict", max_num_fields=MAX_FORM_FIELDS)
    except ValueError:  # UnicodeDecodeError (the body or a percent escape), or too many fields
        raise UnreadableForm from None


def parse_multipart_form(body: str | None, base64_encoded: bool, content_type: str) -> FormData:
    """A ``multipart/form-data`` body's text fields, read whole or refused like :func:`parse_form`.

    File parts are ignored; a text part that is not UTF-8 makes the form unreadable.
    """
    if not body:
        return {}
    data = _body_bytes(body, base64_encoded)
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = BytesParser(policy=default).parsebytes(head + data)
    form: FormData = {}
    if not message.is_multipart():
        raise UnreadableForm
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or part.get_filename() is not None or part.get_content_maintype() != "text":
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            try:
                form.setdefault(name, []).append(payload.decode(part.get_content_charset() or "utf-8"))
            except (LookupError, UnicodeDecodeError):
                raise UnreadableForm from None
    if sum(len(values) for values in form.values()) > MAX_FORM_FIELDS:
        raise UnreadableForm
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
    """The profile version the form was shown with (ASCII digits only: ``²`` is a digit to
    ``str.isdigit`` but no number to ``int``)."""
    raw = first(form, "version")
    return int(raw) if _VERSION.fullmatch(raw) else None


def pause_weeks(form: FormData) -> int | None:
    """The pause chosen from the list (none chosen: 0), or None for anything not on it."""
    return _PAUSE_CHOICES.get(first(form, "pause_weeks") or "0")


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
    weeks = pause_weeks(form)
    if weeks is None:
        errors["pause_weeks"] = translate("Please choose the length of the pause from the list.")
    if errors:
        raise FormErrors(errors)
    # While paused, the weeks chosen extend the pause from its end (the pause-ending email leads here).
    prefs = profile.preferences
    start = prefs.paused_until if prefs.paused_until is not None and prefs.is_paused(now) else now
    preferences = PreferencesPatch(
        topics=topics if topics_shown else None,
        frequency=frequency,
        channels=channels or None,
        paused_until=start + dt.timedelta(weeks=weeks) if weeks else None,
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


def accessibility_feedback(form: FormData, translate: Translate, *, ask_address: bool) -> tuple[str, str | None]:
    """The statement's feedback form: the message, and (``ask_address``: not signed in) the optional
    address to answer to, in the domain's normal form."""
    errors: dict[str, str] = {}
    message = first(form, "message")
    if not message:
        errors["message"] = translate("Please describe the barrier you met.")
    elif len(message) > MAX_REQUEST_MESSAGE:
        errors["message"] = translate("Please shorten your message to {max} characters.").format(
            max=MAX_REQUEST_MESSAGE
        )
    address: str | None = None
    if ask_address and first(form, "email"):
        try:
            address = email_address(form, translate)
        except FormErrors as error:
            errors.update(error.errors)
    if errors:
        raise FormErrors(errors)
    return message, address


def unsubscribe_note(form: FormData) -> str:
    """The optional words under "something else", cut to the characters the use case keeps.

    Kept only with that reason; it goes into the withdrawal's ledger entry and nowhere else (never
    into a log line or an event).
    """
    if first(form, "reason") != "other":
        return ""
    return " ".join(first(form, "reason_text").split())[:MAX_NOTE]


def opt_down_patch(form: FormData, catalog: Catalog, now: dt.datetime, translate: Translate) -> ProfilePatch:
    """The unsubscribe page's "less instead of nothing": visible topics kept, frequency, pause.

    Channels are not on that page and stay as they are; an unknown frequency falls back to no
    change, a pause not on the list is FormErrors for ``pause_weeks``.
    """
    chosen = set(form.get("topic", []))
    frequency = first(form, "frequency")
    weeks = pause_weeks(form)
    if weeks is None:
        raise FormErrors({"pause_weeks": translate("Please choose a pause from the list.")})
    return ProfilePatch(
        preferences=PreferencesPatch(
            topics={topic.id: topic.id in chosen for topic in catalog.visible_topics()},
            frequency=frequency if catalog.frequency(frequency) else None,
            paused_until=now + dt.timedelta(weeks=weeks) if weeks > 0 else None,
        )
    )
