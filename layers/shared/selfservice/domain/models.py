"""Domain models of the self-service center (pydantic v2, no AWS)."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
import uuid
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ChannelId = Literal["email", "sms"]
Language = Literal["de", "en"]
FieldValueType = str | list[str]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_id() -> str:
    """Opaque, unguessable id (profile ids appear in URLs of the JSON API)."""
    return uuid.uuid4().hex


def normalise_email(address: str) -> str:
    """The key used for uniqueness and lookup: trimmed and lower-cased (domain and local part)."""
    return address.strip().lower()


class SubscriptionStatus(StrEnum):
    """``not_subscribed``: a customer record without newsletter consent (e.g. created by the shop)."""

    NOT_SUBSCRIBED = "not_subscribed"
    PENDING = "pending"
    SUBSCRIBED = "subscribed"
    UNSUBSCRIBED = "unsubscribed"


class Source(StrEnum):
    """Where a change or consent came from (kept in the ledger as proof)."""

    API = "api"
    PAGE = "page"
    ONE_CLICK = "one-click"
    CONFIRMATION_LINK = "confirmation-link"
    CUSTOMER_SERVICE = "customer-service"
    SHOP = "shop"
    SYSTEM = "system"
    IMPORT = "import"
    """A company's existing subscribers, brought with the proof of a consent given elsewhere."""
    SMS_KEYWORD = "sms-keyword"
    """A reply to our SMS with a keyword such as STOP."""


class LedgerKind(StrEnum):
    PROFILE_CREATED = "profile_created"
    PROFILE_CHANGED = "profile_changed"
    CONSENT_GIVEN = "consent_given"
    CONSENT_WITHDRAWN = "consent_withdrawn"
    EMAIL_SENT = "email_sent"
    EMAIL_SKIPPED = "email_skipped"
    REVIEW_REQUESTED = "review_requested"
    REVIEW_CONFIRMED = "review_confirmed"
    REQUEST_SUBMITTED = "request_submitted"
    REQUEST_UPDATED = "request_updated"
    SIGNED_OUT_EVERYWHERE = "signed_out_everywhere"
    ADDRESS_SUPPRESSED = "address_suppressed"
    SMS_CODE_SENT = "sms_code_sent"
    NEWSLETTER_SENT = "newsletter_sent"
    """A sending system reported a newsletter or SMS to the customer (campaign, topic, channel, subject)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FieldValue(_Model):
    value: FieldValueType
    confirmed_at: dt.datetime


class Preferences(_Model):
    """What the customer wants to hear about, how often, on which channel, and pauses.

    ``topics`` holds an explicit choice per topic; topics without an entry are not subscribed.
    """

    topics: dict[str, bool] = Field(default_factory=dict)
    frequency: str = "as_published"
    channels: dict[str, list[ChannelId]] = Field(default_factory=dict)
    paused_until: dt.datetime | None = None

    def subscribed_topics(self) -> list[str]:
        return sorted(topic for topic, on in self.topics.items() if on)

    def channels_for(self, topic_id: str) -> list[ChannelId]:
        return self.channels.get(topic_id, ["email"])

    def is_paused(self, now: dt.datetime) -> bool:
        return self.paused_until is not None and self.paused_until > now


class ServiceBooking(_Model):
    service_id: str
    option: str
    booked_at: dt.datetime
    changed_at: dt.datetime


class Profile(_Model):
    id: str = Field(default_factory=new_id)
    email: str
    locale: Language = "de"
    fields: dict[str, FieldValue] = Field(default_factory=dict)
    preferences: Preferences = Field(default_factory=Preferences)
    services: dict[str, ServiceBooking] = Field(default_factory=dict)
    status: SubscriptionStatus = SubscriptionStatus.NOT_SUBSCRIBED
    consent_version: str | None = None
    suppressed: bool = False
    created_at: dt.datetime = Field(default_factory=utcnow)
    updated_at: dt.datetime = Field(default_factory=utcnow)
    last_reviewed_at: dt.datetime | None = None
    last_review_email_at: dt.datetime | None = None
    token_version: int = 0
    version: int = 1
    marketing_emails_at: list[dt.datetime] = Field(default_factory=list)
    """Send times of marketing emails of the last 30 days (the frequency cap counts them)."""
    last_review_campaign: str | None = None
    """Marker of the campaign run or event that claimed the last review email (a retried batch
    skips it); see ``domain.review.claimed_by``."""
    pending_expires_at: dt.datetime | None = None
    """Until a double opt-in is confirmed: when the pending profile disappears (table TTL)."""
    subscribed_at: dt.datetime | None = None
    """When the last double opt-in was confirmed (a new subscriber's review grace starts then)."""
    verified_phone: str | None = None
    """The phone number whose SMS code the customer entered (SMS double opt-in); SMS goes only to it."""
    pause_note_sent_for: dt.datetime | None = None
    """The end of the pause the customer was told about ("emails resume on …"): once per pause."""
    sms_consent_version: str | None = None
    """The SMS consent wording the customer agreed to when confirming ``verified_phone``."""

    @property
    def email_key(self) -> str:
        return normalise_email(self.email)

    @property
    def phone(self) -> str | None:
        value = self.fields.get("phone")
        return value.value if value and isinstance(value.value, str) else None

    def sms_verified(self) -> bool:
        """The SMS channel can be used: the current phone number is the one the customer confirmed."""
        return self.verified_phone is not None and self.verified_phone == self.phone

    def value_of(self, field_id: str) -> FieldValueType | None:
        value = self.fields.get(field_id)
        return value.value if value else None


class Change(_Model):
    """One changed path of a profile, with the value before and after."""

    field: str
    before: Any = None
    after: Any = None


class OutboxEvent(_Model):
    """An event for other systems (source ``self-service``), written in the same transaction as the
    ledger entry that carries it: the ledger is the outbox, a pipe puts the event on the bus."""

    type: str
    detail: dict[str, Any]


class LedgerEntry(_Model):
    """Append-only record: a change, a consent given or withdrawn, an email sent or skipped."""

    id: str = Field(default_factory=new_id)
    profile_id: str
    at: dt.datetime = Field(default_factory=utcnow)
    kind: LedgerKind
    source: Source
    changes: list[Change] = Field(default_factory=list)
    consent_version: str | None = None
    topics: list[str] = Field(default_factory=list)
    detail: dict[str, str] = Field(default_factory=dict)
    event: OutboxEvent | None = Field(default=None, exclude=True)
    """Stored with the entry (``event_type``, ``event_detail``), never shown in its history."""


class PendingSubscription(_Model):
    """A double opt-in asked for an address that has a profile already, kept aside: nothing of the
    profile changes until its owner confirms with the link of this request (then the topics apply).

    Kept under the address (its hash), one per address: a newer request replaces an older one, whose
    link then no longer confirms anything. ``confirmed_at`` keeps a second click of the link harmless.
    """

    # Built at the first one kept aside or confirmed (most cold starts never touch one).
    model_config = ConfigDict(extra="forbid", defer_build=True)

    profile_id: str
    request_id: str = Field(default_factory=new_id)
    topics: list[str]
    consent_requested: str
    requested_at: dt.datetime
    expires_at: dt.datetime
    evidence: dict[str, str] = Field(default_factory=dict)
    """The salted hash of the client that asked (the consent evidence of the request)."""
    confirmed_at: dt.datetime | None = None


class RequestType(StrEnum):
    QUESTION = "question"
    ADDRESS_CHANGE = "address_change"
    COMPLAINT = "complaint"
    DATA_REQUEST = "data_request"
    ACCESSIBILITY = "accessibility"
    """A barrier reported through the accessibility statement's feedback form."""


class RequestStatus(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    CLOSED = "closed"


MAX_REQUEST_TEXT = 4000


class RequestReply(_Model):
    """Customer service's answer to a request, shown to the customer and emailed to them."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    at: dt.datetime
    text: str = Field(min_length=1, max_length=MAX_REQUEST_TEXT)


class CustomerRequest(_Model):
    """A request the customer submitted; customer service works on it, replies and closes it.

    Its id starts with the profile's id (``<profile id>-<16 hex>``), so the request is found by its
    id alone with one consistent read in the profile's partition (no index for lookups by id).
    """

    # Built when the first request is read or submitted (most cold starts never touch one).
    model_config = ConfigDict(extra="forbid", defer_build=True)

    id: str
    profile_id: str
    type: RequestType
    message: str = Field(max_length=MAX_REQUEST_TEXT)
    status: RequestStatus = RequestStatus.OPEN
    created_at: dt.datetime = Field(default_factory=utcnow)
    updated_at: dt.datetime = Field(default_factory=utcnow)
    replies: list[RequestReply] = Field(default_factory=list)
    version: int = 1


REQUEST_ID_PATTERN = r"^[0-9a-f]{32}-[0-9a-f]{16}$"


def new_request_id(profile_id: str) -> str:
    return f"{profile_id}-{secrets.token_hex(8)}"


def profile_id_of_request(request_id: str) -> str | None:
    """The profile a request id belongs to, or None for an id this product did not issue."""
    return request_id[:32] if re.fullmatch(REQUEST_ID_PATTERN, request_id) else None


def address_hash(address: str) -> str:
    """How the suppression list keeps an address: a hash of its normalised form, never the address."""
    return hashlib.sha256(f"selfservice-suppression:{normalise_email(address)}".encode()).hexdigest()


def phone_hash(phone: str) -> str:
    """How keys and limits name a mobile number: a hash of it, never the number."""
    return hashlib.sha256(f"selfservice-phone:{phone}".encode()).hexdigest()
