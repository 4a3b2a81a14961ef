"""The consent-proof document of one profile: every consent given or withdrawn, per topic and channel,
with the door it came through, the exact wording, the double opt-in message and the evidence.

Built from the ledger alone (and the catalog's wording versions), generically: whatever writes a
``consent_given`` or ``consent_withdrawn`` entry (the pages, the API, one-click, the confirmation
link, an SMS code, an import) appears here with what its entry recorded. Pure: no AWS, no rendering.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from pydantic import BaseModel, ConfigDict, Field

from selfservice.catalog import Catalog
from selfservice.domain.consent import receiving_topics
from selfservice.domain.models import LedgerEntry, LedgerKind, Profile

CONSENT_KINDS = (LedgerKind.CONSENT_GIVEN, LedgerKind.CONSENT_WITHDRAWN)
CONFIRMATION_EMAIL = "confirm_subscription"
SMS_CODE_SENT = "sms_code_sent"
"""The ledger kind of an SMS confirmation code (SMS double opt-in), matched by its value."""
DEFAULT_CHANNEL = "email"
"""The channel of a consent entry that names none: the double opt-in of a topic is by email."""
EVIDENCE_CHECK = (
    "Each evidence item keeps a random salt and hash = SHA-256 (hex) of the UTF-8 text "
    "'<salt>|<IP address>|<user agent>'. A claimed IP address and user agent (exactly as the browser sent "
    "them) belong to the click or request when that hash of them equals the stored hash; any other "
    "value gives another hash. The raw IP address and user agent are never stored. Check offline, e.g. "
    "printf '%s' '<salt>|<IP address>|<user agent>' | sha256sum, or with "
    "POST /api/profiles/{id}/consent-proof/check."
)


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)


class Evidence(_Out):
    """A salted hash of the client that acted: ``role`` ``action`` (the click that gave or withdrew)
    or ``request`` (the form that asked for the double opt-in)."""

    role: str
    salt: str
    hash: str


class Wording(_Out):
    """A consent wording version with its exact text in each language and the text's SHA-256."""

    version: str
    of: str = Field(description="email: the topics' own wordings (email double opt-in); sms: the SMS double opt-in's")
    known: bool = Field(description="False when the catalog no longer has this version")
    valid_from: dt.date | None = None
    valid_until: dt.date | None = None
    text: dict[str, str] = Field(default_factory=dict)
    sha256: dict[str, str] = Field(default_factory=dict)


class SentMessage(_Out):
    """The message that asked for the consent (a double opt-in email or an SMS code)."""

    entry_id: str
    at: dt.datetime
    kind: str
    channel: str
    subject: str | None = None
    message_id: str | None = None
    phone: str | None = Field(default=None, description="The number an SMS code went to")
    language: str | None = None
    text_sha256: str | None = None
    html_sha256: str | None = None
    text_copy: str | None = None


class Request(_Out):
    """The double opt-in request that came before a confirmation (the subscribe form, the API)."""

    at: dt.datetime
    source: str
    wording_requested: str | None = None


class ConsentRecord(_Out):
    """One consent given or withdrawn, as its ledger entry recorded it."""

    entry_id: str
    at: dt.datetime
    action: str = Field(description="given or withdrawn")
    door: str = Field(description="The ledger source: page, api, one-click, confirmation-link, …")
    topics: list[str]
    channel: str
    wording_version: str | None
    wording_of: str = Field(description="Which wordings the version is one of: email or sms")
    phone: str | None = Field(default=None, description="The mobile number an SMS consent is about")
    evidence: list[Evidence]
    caller: str | None = Field(default=None, description="The signed API caller, for consents through the API")
    api_request_id: str | None = None
    request: Request | None = None
    messages: list[SentMessage] = Field(default_factory=list)
    reason: str | None = None
    choice: str | None = Field(default=None, description="leave or opt_down, for the unsubscribe page")


class TopicChannel(_Out):
    """A topic on a channel: what the ledger proves, and what the profile receives now."""

    topic: str
    channel: str
    consented: bool
    since: dt.datetime
    entry_id: str
    receiving: bool


class ConsentProof(_Out):
    """The whole document (``GET /api/profiles/{id}/consent-proof``, the data download's ``consent_proof``)."""

    profile_id: str
    email: str
    status: str
    generated_at: dt.datetime
    current: list[TopicChannel]
    consents: list[ConsentRecord]
    wordings: list[Wording]
    evidence_check: str = EVIDENCE_CHECK


def channel_of(entry: LedgerEntry) -> str:
    return entry.detail.get("channel") or DEFAULT_CHANNEL


def evidence_of(detail: dict[str, str]) -> list[Evidence]:
    found = []
    for role, prefix in (("action", ""), ("request", "request_")):
        salt, digest = detail.get(f"{prefix}evidence_salt"), detail.get(f"{prefix}evidence_hash")
        if salt is not None and digest:
            found.append(Evidence(role=role, salt=salt, hash=digest))
    return found


def evidence_matches(evidence: Evidence, ip: str, user_agent: str) -> bool:
    """Whether a claimed IP address and user agent hash to ``evidence`` (constant-time comparison)."""
    digest = hashlib.sha256(f"{evidence.salt}|{ip}|{user_agent}".encode()).hexdigest()
    return secrets.compare_digest(digest, evidence.hash)


def wording(catalog: Catalog, version: str, of: str = DEFAULT_CHANNEL) -> Wording:
    found = catalog.consent_wording(version, of)
    if found is None:
        return Wording(version=version, of=of, known=False)
    return Wording(
        version=version,
        of=of,
        known=True,
        valid_from=found.valid_from,
        valid_until=catalog.consent_valid_until(found, of),
        text={language: found.text.get(language) for language in catalog.languages},
        sha256={language: found.digest(language) for language in catalog.languages},
    )


def _message(entry: LedgerEntry) -> SentMessage:
    detail = entry.detail
    return SentMessage(
        entry_id=entry.id,
        at=entry.at,
        kind=entry.kind.value,
        channel="sms" if entry.kind.value == SMS_CODE_SENT else "email",
        subject=detail.get("subject"),
        message_id=detail.get("message_id") or detail.get("sms_message_id"),
        phone=detail.get("phone"),
        language=detail.get("language"),
        text_sha256=detail.get("text_sha256"),
        html_sha256=detail.get("html_sha256"),
        text_copy=detail.get("text_copy"),
    )


def _asked_for(entry: LedgerEntry, before: list[LedgerEntry]) -> list[SentMessage]:
    """The message that asked for a consent given: for a confirmation link, the confirmation email it
    answered (the one sent for its request, else the last one before it); for an SMS consent, the last
    code sent before it. None for a consent given directly (on the page, through the API)."""
    channel = channel_of(entry)
    if channel == "sms":
        codes = [e for e in before if e.kind.value == SMS_CODE_SENT]
        return [_message(codes[-1])] if codes else []
    if entry.source.value != "confirmation-link":
        return []
    emails = [e for e in before if e.kind == LedgerKind.EMAIL_SENT and e.detail.get("email_type") == CONFIRMATION_EMAIL]
    wanted = entry.detail.get("subscription_request")
    named = [e for e in emails if wanted and e.detail.get("subscription_request") == wanted]
    chosen = named or emails
    return [_message(chosen[-1])] if chosen else []


def _request(entry: LedgerEntry, before: list[LedgerEntry]) -> tuple[Request | None, list[Evidence]]:
    """The double opt-in request a confirmation answered, with its evidence: kept in the confirmation's
    entry for an address that had a profile, else the entry that created the pending profile."""
    if entry.source.value != "confirmation-link":
        return None, []
    detail = entry.detail
    if detail.get("requested_at"):
        at = dt.datetime.fromisoformat(detail["requested_at"])
        return Request(at=at, source="page", wording_requested=detail.get("consent_requested")), []
    created = next((e for e in before if e.kind == LedgerKind.PROFILE_CREATED), None)
    if created is None:
        return None, []
    request = Request(
        at=created.at, source=created.source.value, wording_requested=created.detail.get("consent_requested")
    )
    return request, [Evidence(role="request", salt=e.salt, hash=e.hash) for e in evidence_of(created.detail)]


def consent_record(entry: LedgerEntry, before: list[LedgerEntry]) -> ConsentRecord:
    """``entry`` as the document shows it; ``before``: the ledger entries older than it, oldest first."""
    detail = entry.detail
    request, request_evidence = _request(entry, before)
    given = entry.kind == LedgerKind.CONSENT_GIVEN
    sms = detail.get("channel") == "sms"
    return ConsentRecord(
        entry_id=entry.id,
        at=entry.at,
        action="given" if given else "withdrawn",
        door=entry.source.value,
        topics=list(entry.topics),
        channel=channel_of(entry) if given or "channel" in detail else "all",
        wording_version=entry.consent_version,
        wording_of="sms" if sms else DEFAULT_CHANNEL,
        phone=detail.get("phone") or None if sms else None,
        evidence=[*evidence_of(detail), *request_evidence],
        caller=detail.get("caller"),
        api_request_id=detail.get("request_id") if "caller" in detail else None,
        request=request,
        messages=_asked_for(entry, before) if given else [],
        reason=detail.get("reason") or None,
        choice=detail.get("unsubscribe_choice"),
    )


def build(profile: Profile, ledger: list[LedgerEntry], catalog: Catalog, now: dt.datetime) -> ConsentProof:
    """The consent proof of ``profile`` from its whole ledger (any order)."""
    # Entries of one write share their time: the topics' own consent first, then the one by SMS.
    ordered = sorted(ledger, key=lambda e: (e.at, "channel" in e.detail))
    consents = [
        consent_record(entry, ordered[:index])
        for index, entry in enumerate(ordered)
        if entry.kind in CONSENT_KINDS and (entry.topics or "channel" in entry.detail)
    ]
    state: dict[tuple[str, str], ConsentRecord] = {}
    channels = {channel.id for channel in catalog.channels}
    for record in consents:
        affected = sorted(channels) if record.channel == "all" else [record.channel]
        for topic in record.topics:
            for channel in affected:
                if record.action == "withdrawn" and (topic, channel) not in state:
                    continue
                state[(topic, channel)] = record
    receiving = set(receiving_topics(profile))
    current = [
        TopicChannel(
            topic=topic,
            channel=channel,
            consented=record.action == "given",
            since=record.at,
            entry_id=record.entry_id,
            receiving=topic in receiving
            and channel in profile.preferences.channels_for(topic)
            and (channel != "sms" or profile.sms_verified()),
        )
        for (topic, channel), record in sorted(state.items())
    ]
    versions = sorted(
        {(r.wording_of, r.wording_version) for r in consents if r.wording_version}
        | {
            (DEFAULT_CHANNEL, r.request.wording_requested)
            for r in consents
            if r.request and r.request.wording_requested
        }
    )
    return ConsentProof(
        profile_id=profile.id,
        email=profile.email,
        status=profile.status.value,
        generated_at=now,
        current=current,
        consents=consents,
        wordings=[wording(catalog, version, of) for of, version in versions],
    )
