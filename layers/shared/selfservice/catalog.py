"""The marketing catalog: topics, frequencies, channels, services, profile fields and review rules.

Loaded from one YAML file and validated at load. An invalid catalog raises :class:`CatalogError`
whose message names the offending field (``topics[2].expected_frequency``), so a wrong edit
fails loudly in ``make test`` instead of at a customer's click.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, EmailStr, Field, ValidationError, field_validator

Language = Literal["de", "en"]


class CatalogError(ValueError):
    """The catalog file is invalid; ``field`` is the dotted path of the first wrong field."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"invalid catalog: {field}: {reason}")
        self.field = field
        self.reason = reason


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LocalizedText(_Strict):
    de: str = Field(min_length=1)
    en: str = Field(min_length=1)

    def get(self, language: str) -> str:
        return self.en if language == "en" else self.de


class LocalizedUrl(_Strict):
    """An address per language; only https, so a footer never links to a plain-HTTP page."""

    de: str = Field(pattern=r"^https://[^\s\"'<>]+$")
    en: str = Field(pattern=r"^https://[^\s\"'<>]+$")

    def get(self, language: str) -> str:
        return self.en if language == "en" else self.de


class Frequency(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label: LocalizedText
    """The choice on the communication page ("Weekly digest")."""
    cadence: LocalizedText
    """A full sentence under a topic that usually comes at this frequency ("About once a week.")."""
    max_emails_per_30_days: int = Field(ge=1)


class Channel(_Strict):
    id: Literal["email", "sms"]
    label: LocalizedText
    requires_field: str | None = None


class Topic(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: LocalizedText
    description: LocalizedText
    expected_frequency: str
    channels: tuple[Literal["email", "sms"], ...] = ("email",)
    hidden: bool = False


class Choice(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label: LocalizedText


class ServiceOption(Choice):
    pass


class Service(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: LocalizedText
    description: LocalizedText
    options: tuple[ServiceOption, ...] = Field(min_length=1)
    requires_fields: tuple[str, ...] = ()

    def option(self, option_id: str) -> ServiceOption | None:
        return next((o for o in self.options if o.id == option_id), None)


FieldType = Literal["text", "date", "phone", "choice", "multi_choice"]


class FieldSpec(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    type: FieldType
    label: LocalizedText
    required: bool = False
    max_age_days: int | None = Field(default=None, ge=1)
    max_length: int = Field(default=200, ge=1, le=2000)
    pattern: str | None = None
    choices: tuple[Choice, ...] = ()

    def choice_ids(self) -> set[str]:
        return {c.id for c in self.choices}


class ReviewRules(_Strict):
    interval_days: int = Field(ge=1)
    cooldown_days: int = Field(ge=0)
    event_delay_hours: int = Field(ge=0)
    new_subscriber_grace_days: int = Field(default=30, ge=0)
    """No review email this soon after a subscription was confirmed (or a profile created)."""


class PauseRules(_Strict):
    reminder_days_before: int = Field(default=3, ge=1, le=30)
    """How many days before a pause ends the customer is told that emails resume (once per pause)."""


class ConsentWording(_Strict):
    """One version of the consent text shown next to a subscription's button.

    Every version ever shown stays in the catalog (a consent entry names the version it was given
    under, and the consent-proof document prints that version's exact text): a new wording is a new
    version, never an edit of an old one.
    """

    version: str = Field(min_length=1)
    valid_from: dt.date
    valid_until: dt.date | None = None
    """The last day it was shown; without it, until the day before the next version's ``valid_from``."""
    text: LocalizedText

    def digest(self, language: str) -> str:
        """SHA-256 of the text in ``language`` (UTF-8): what the proof prints next to the text."""
        return hashlib.sha256(self.text.get(language).encode()).hexdigest()


class SmsRules(_Strict):
    """The SMS double opt-in: how long a code lives, how many tries it takes, what the customer agrees to."""

    code_lifetime_minutes: int = Field(default=10, ge=1, le=60)
    code_attempts: int = Field(default=5, ge=1, le=10)
    """Wrong entries one code takes; then it is used up and a new one must be asked for."""
    consent_wordings: tuple[ConsentWording, ...] = Field(min_length=1)

    def current_consent(self, today: dt.date) -> ConsentWording:
        """The SMS wording in force today (as :meth:`Catalog.current_consent` for email)."""
        return _in_force(self.consent_wordings, today)


def _in_force(wordings: tuple[ConsentWording, ...], today: dt.date) -> ConsentWording:
    """The newest wording whose ``valid_from`` has passed (the oldest before any has)."""
    in_force = [w for w in wordings if w.valid_from <= today]
    return max(in_force or list(wordings), key=lambda w: w.valid_from)


RequestTypeId = Literal["question", "address_change", "complaint", "data_request", "accessibility"]
"""The request types the domain knows (``selfservice.domain.models.RequestType``)."""


class RequestTypeSpec(_Strict):
    """How a request type is named to the customer and to customer service, and which mailbox gets it."""

    id: RequestTypeId
    label: LocalizedText
    mailbox: EmailStr | None = None
    """Where requests of this type go (e.g. the data protection officer's); else the ServiceMailbox."""


class EnforcementBody(_Strict):
    """Where a customer can complain when accessibility feedback was not answered (BFSG § 14)."""

    name: LocalizedText
    address: str = Field(min_length=1)
    phone: str | None = None
    email: str | None = None
    url: str | None = Field(default=None, pattern=r"^https://[^\s\"'<>]+$")


class Accessibility(_Strict):
    """What the accessibility statement (``/accessibility``) says besides the test results."""

    known_limitations: tuple[LocalizedText, ...] = ()
    """Barriers known and not yet removed: the statement lists them (and any makes it "partially conformant")."""
    enforcement: EnforcementBody


class Company(_Strict):
    """The company's legal pages, linked from every page footer and every email footer."""

    imprint_url: LocalizedUrl
    privacy_policy_url: LocalizedUrl
    accessibility_statement_url: LocalizedUrl | None = None
    """The company website's own accessibility statement, if any (the statement of these pages links it)."""
    accessibility: Accessibility


class Contact(_Strict):
    """How customers reach a person when self-service cannot help."""

    email: str
    phone: str
    hours: LocalizedText


class Catalog(_Strict):
    version: str
    languages: tuple[Language, ...] = ("de", "en")
    default_language: Language = "de"
    frequencies: tuple[Frequency, ...] = Field(min_length=1)
    default_frequency: str
    channels: tuple[Channel, ...] = Field(min_length=1)
    topics: tuple[Topic, ...] = Field(min_length=1)
    services: tuple[Service, ...] = ()
    request_types: tuple[RequestTypeSpec, ...] = Field(min_length=1)
    fields: tuple[FieldSpec, ...] = Field(min_length=1)
    review: ReviewRules
    pause: PauseRules = PauseRules()
    consent_wordings: tuple[ConsentWording, ...] = Field(min_length=1)
    contact: Contact
    company: Company
    sms: SmsRules | None = None
    """Needed when a channel ``sms`` is offered (the double opt-in by code)."""

    @field_validator("version", mode="before")
    @classmethod
    def _version_as_text(cls, value: object) -> object:
        # YAML reads an unquoted 2026-11-01 as a date; the version is an opaque label.
        return value.isoformat() if isinstance(value, dt.date) else value

    # --- lookups -------------------------------------------------------------------------
    def topic(self, topic_id: str) -> Topic | None:
        return next((t for t in self.topics if t.id == topic_id), None)

    def visible_topics(self) -> list[Topic]:
        return [t for t in self.topics if not t.hidden]

    def service(self, service_id: str) -> Service | None:
        return next((s for s in self.services if s.id == service_id), None)

    def field(self, field_id: str) -> FieldSpec | None:
        return next((f for f in self.fields if f.id == field_id), None)

    def frequency(self, frequency_id: str) -> Frequency | None:
        return next((f for f in self.frequencies if f.id == frequency_id), None)

    def request_type(self, type_id: str) -> RequestTypeSpec | None:
        return next((r for r in self.request_types if r.id == type_id), None)

    def current_consent(self, today: dt.date | None = None) -> ConsentWording:
        """The wording in force today: the newest one whose ``valid_from`` has passed."""
        return _in_force(self.consent_wordings, today or dt.datetime.now(dt.UTC).date())

    def sms_rules(self) -> SmsRules:
        """The SMS double opt-in rules (a catalog offering SMS has them: checked at load)."""
        if self.sms is None:
            raise CatalogError("sms", "the sms channel needs an sms section")
        return self.sms

    def wordings_of(self, channel: str) -> tuple[ConsentWording, ...]:
        """Every consent wording version of ``channel``: ``sms`` the SMS double opt-in's, else the
        topics' own (the email double opt-in's)."""
        if channel == "sms":
            return self.sms.consent_wordings if self.sms is not None else ()
        return self.consent_wordings

    def consent_wording(self, version: str | None, channel: str = "email") -> ConsentWording | None:
        return next((w for w in self.wordings_of(channel) if w.version == version), None)

    def consent_valid_until(self, wording: ConsentWording, channel: str = "email") -> dt.date | None:
        """The last day ``wording`` was shown: its own ``valid_until``, else the day before the next
        version of its channel came into force, else None (still in force)."""
        if wording.valid_until is not None:
            return wording.valid_until
        later = [w.valid_from for w in self.wordings_of(channel) if w.valid_from > wording.valid_from]
        return min(later) - dt.timedelta(days=1) if later else None


def _unique(items: Iterable[BaseModel], section: str, key: str = "id") -> None:
    seen: set[str] = set()
    for index, item in enumerate(items):
        value = getattr(item, key)
        if value in seen:
            raise CatalogError(f"{section}[{index}].{key}", f"duplicate {key} {value!r}")
        seen.add(value)


def _check_references(catalog: Catalog) -> None:
    """Cross-references pydantic cannot see: every id used must be declared."""
    _unique(catalog.frequencies, "frequencies")
    _unique(catalog.channels, "channels")
    _unique(catalog.topics, "topics")
    _unique(catalog.services, "services")
    _unique(catalog.fields, "fields")
    _unique(catalog.request_types, "request_types")
    missing_types = sorted(set(get_args(RequestTypeId)) - {r.id for r in catalog.request_types})
    if missing_types:
        raise CatalogError("request_types", f"no label for request type {missing_types[0]!r}")
    _unique(catalog.consent_wordings, "consent_wordings", key="version")
    frequency_ids = {f.id for f in catalog.frequencies}
    channel_ids = {c.id for c in catalog.channels}
    field_ids = {f.id for f in catalog.fields}
    if catalog.default_frequency not in frequency_ids:
        raise CatalogError("default_frequency", f"unknown frequency {catalog.default_frequency!r}")
    if catalog.default_language not in catalog.languages:
        raise CatalogError("default_language", f"{catalog.default_language!r} is not in languages")
    for index, channel in enumerate(catalog.channels):
        if channel.requires_field and channel.requires_field not in field_ids:
            raise CatalogError(f"channels[{index}].requires_field", f"unknown field {channel.requires_field!r}")
    for index, topic in enumerate(catalog.topics):
        if topic.expected_frequency not in frequency_ids:
            raise CatalogError(f"topics[{index}].expected_frequency", f"unknown frequency {topic.expected_frequency!r}")
        for channel_id in topic.channels:
            if channel_id not in channel_ids:
                raise CatalogError(f"topics[{index}].channels", f"unknown channel {channel_id!r}")
    for index, service in enumerate(catalog.services):
        _unique(service.options, f"services[{index}].options")
        for field_id in service.requires_fields:
            if field_id not in field_ids:
                raise CatalogError(f"services[{index}].requires_fields", f"unknown field {field_id!r}")
    for index, spec in enumerate(catalog.fields):
        if spec.type in ("choice", "multi_choice") and not spec.choices:
            raise CatalogError(f"fields[{index}].choices", f"a {spec.type} field needs choices")
        if spec.type not in ("choice", "multi_choice") and spec.choices:
            raise CatalogError(f"fields[{index}].choices", f"a {spec.type} field takes no choices")
    if "sms" in channel_ids and "phone" not in field_ids:
        raise CatalogError("fields", "the sms channel needs a field with id 'phone'")
    if "sms" in channel_ids and catalog.sms is None:
        raise CatalogError("sms", "the sms channel needs an sms section (code lifetime, attempts, consent wordings)")
    if catalog.sms is not None:
        _unique(catalog.sms.consent_wordings, "sms.consent_wordings", key="version")


def _dotted(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def parse_catalog(data: object) -> Catalog:
    """Validate already-parsed YAML/JSON data into a :class:`Catalog`."""
    try:
        catalog = Catalog.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        raise CatalogError(_dotted(tuple(first["loc"])) or "(root)", first["msg"]) from None
    _check_references(catalog)
    return catalog


def load_catalog(path: Path) -> Catalog:
    """Read and validate the catalog file at ``path``."""
    import yaml  # imported when the catalog is first read, not with the handler

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise CatalogError("(file)", f"not valid YAML: {error}") from None
    return parse_catalog(data)


@lru_cache(maxsize=4)
def cached_catalog(path: Path) -> Catalog:
    """The catalog at ``path``, loaded once per process (warm Lambda invocations reuse it)."""
    return load_catalog(path)
