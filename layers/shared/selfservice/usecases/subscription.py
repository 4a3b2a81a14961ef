"""Subscription lifecycle: double opt-in, consent ledger, opt-down instead of leaving, unsubscribe.

Every consent given or withdrawn is an append-only ledger entry with time, source, the catalog's
consent wording version, the topics it covers and a salted hash of the client's IP address and
user agent — enough to prove a consent in a dispute without keeping the raw values.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from enum import StrEnum

from aws_lambda_powertools import Logger

from selfservice.catalog import Catalog
from selfservice.domain.changes import ProfilePatch, apply_patch, default_preferences
from selfservice.domain.consent import receiving_topics
from selfservice.domain.errors import AlreadyExists, InvalidInput, NotFound, VersionConflict
from selfservice.domain.models import (
    Change,
    ChannelId,
    LedgerEntry,
    LedgerKind,
    OutboxEvent,
    PendingSubscription,
    Profile,
    Source,
    SubscriptionStatus,
    address_hash,
)
from selfservice.mail import body_record
from selfservice.tokens import InvalidToken, Purpose
from selfservice.usecases.access import link
from selfservice.usecases.changes import save_changes, sms_consents
from selfservice.usecases.ports import Adapters, AddressRequest

logger = Logger(child=True)

CONFIRMATION_WINDOW = dt.timedelta(hours=48)
ERASED = "erased"
NEW_OPT_IN_ALLOWED = frozenset({ERASED})
"""Suppression reasons a new double opt-in may end (README, Bounces and complaints): an erased
profile's address (the customer left by choice; a confirmed new consent supersedes that). Not a
complaint (the mailbox's owner reported our email as spam, and a form anyone can fill in proves
nothing) nor a hard bounce (the mailbox did not exist; SES's own suppression list drops the email)."""
UNSUBSCRIBE_REASONS = ("too_many", "not_relevant", "never_signed_up", "other")
MAX_NOTE = 500
"""The most characters of the customer's own words kept with the reason "other"."""


@dataclass(frozen=True)
class ClientEvidence:
    """Who clicked, reduced to what a dispute needs: a salted hash, never the raw IP or user agent."""

    ip: str
    user_agent: str

    def as_detail(self) -> dict[str, str]:
        salt = secrets.token_hex(8)
        digest = hashlib.sha256(f"{salt}|{self.ip}|{self.user_agent}".encode()).hexdigest()
        return {"evidence_salt": salt, "evidence_hash": digest}


def evidence_matches(detail: dict[str, str], ip: str, user_agent: str) -> bool:
    """Check a claimed IP and user agent against a ledger entry (for customer service in a dispute)."""
    digest = hashlib.sha256(f"{detail.get('evidence_salt', '')}|{ip}|{user_agent}".encode()).hexdigest()
    return secrets.compare_digest(digest, detail.get("evidence_hash", ""))


def checked_topics(catalog: Catalog, topics: list[str]) -> list[str]:
    wanted = sorted(set(topics))
    if not wanted:
        raise InvalidInput("topics", "choose at least one topic")
    for topic_id in wanted:
        topic = catalog.topic(topic_id)
        if topic is None or topic.hidden:
            raise InvalidInput("topics", "unknown topic")
    return wanted


def subscribe(adapters: Adapters, request: AddressRequest) -> str:
    """A double opt-in, after the page has answered (:mod:`~selfservice.usecases.address_requests`): a
    confirmation email (valid 48 hours), and nothing else changes until it is confirmed. Returns what
    happened.

    An unknown address gets a pending profile (it expires unconfirmed). For an address that has a
    profile the request is kept aside (:class:`~selfservice.domain.models.PendingSubscription`): the
    profile stays as it is until the owner confirms. A confirmed subscriber gets no email; nor does a
    suppressed address, except one suppressed because its profile was erased (:data:`NEW_OPT_IN_ALLOWED`).
    """
    now = adapters.clock()
    repository = adapters.repository
    email, wanted = request.email, list(request.topics)
    hashed = address_hash(email)
    reason = repository.suppression_reason(hashed)
    if reason is not None and reason not in NEW_OPT_IN_ALLOWED:
        logger.info("subscribe for a suppressed address ignored", extra={"reason": reason})
        return "suppressed"
    profile = repository.find_by_email(email)
    if profile is not None and profile.status == SubscriptionStatus.SUBSCRIBED:
        logger.info("subscribe for a confirmed subscriber ignored", extra={"profile_id": profile.id})
        return "subscribed_already"
    consent = adapters.catalog.current_consent(now.date())
    if profile is not None:
        pending = PendingSubscription(
            profile_id=profile.id,
            topics=wanted,
            consent_requested=consent.version,
            requested_at=request.requested_at,
            expires_at=now + CONFIRMATION_WINDOW,
            evidence=request.evidence,
        )
        repository.put_pending_subscription(hashed, pending)
        send_confirmation(adapters, profile, wanted, request=pending.request_id)
        return "sent"
    profile = Profile(
        email=email,
        locale=request.locale,
        status=SubscriptionStatus.PENDING,
        created_at=now,
        updated_at=now,
        preferences=default_preferences(adapters.catalog),
        pending_expires_at=now + CONFIRMATION_WINDOW,
    )
    profile.preferences.topics = dict.fromkeys(wanted, True)
    entry = LedgerEntry(
        profile_id=profile.id,
        at=now,
        kind=LedgerKind.PROFILE_CREATED,
        source=Source.PAGE,
        topics=wanted,
        detail={"consent_requested": consent.version, **request.evidence},
    )
    try:
        repository.create(profile, [entry])
    except AlreadyExists:
        return "raced"
    send_confirmation(adapters, profile, wanted)
    return "sent"


def send_confirmation(adapters: Adapters, profile: Profile, topics: list[str], *, request: str | None = None) -> None:
    """The double opt-in email; ``request``: the subscription kept aside that its link confirms.

    Its ledger entry keeps the subject, the SES message id, digests of the body as sent and a copy of
    its text without the link's token (:func:`~selfservice.mail.body_record`): the consent proof shows them.
    """
    email = adapters.renderer.render(
        "confirm_subscription",
        profile.locale,
        marketing=False,
        link=link(adapters, profile, Purpose.CONFIRM, "/confirm", request=request),
        topics=[t.name.get(profile.locale) for topic_id in topics if (t := adapters.catalog.topic(topic_id))],
        recipient=profile.email,
        company=adapters.settings.company_name,
    )
    context = body_record(email) | ({"subscription_request": request} if request else {})
    context["topics"] = ",".join(topics)
    adapters.mailer.send(profile, email, Source.SYSTEM, now=adapters.clock(), context=context)
    logger.info("confirmation email sent", extra={"profile_id": profile.id})


@dataclass(frozen=True)
class Confirmation:
    """What a confirmation link confirms: the topics for the profile, and the request kept aside (None:
    the profile itself is pending)."""

    profile: Profile
    topics: list[str]
    pending: PendingSubscription | None


def confirmation(adapters: Adapters, token: str) -> Confirmation:
    """What a confirmation link is for (raises InvalidToken/ExpiredToken)."""
    claims = adapters.signer().claims(token, Purpose.CONFIRM)
    try:
        profile = adapters.repository.get(claims.profile_id)
    except NotFound:
        raise InvalidToken("confirm") from None
    if claims.request is None:
        if profile.status not in (SubscriptionStatus.PENDING, SubscriptionStatus.SUBSCRIBED):
            raise InvalidToken("confirm")
        return Confirmation(profile, profile.preferences.subscribed_topics(), None)
    pending = adapters.repository.pending_subscription(address_hash(profile.email))
    if (
        pending is None
        or pending.request_id != claims.request
        or pending.profile_id != profile.id
        or pending.expires_at <= adapters.clock()
    ):
        raise InvalidToken("confirm")  # replaced by a newer request, expired, or the address changed
    return Confirmation(profile, list(pending.topics), pending)


def confirm_subscription(adapters: Adapters, token: str, evidence: ClientEvidence) -> Profile:
    """The POST behind the confirm button: records the consent. Confirming twice changes nothing.

    The profile becomes a subscriber of the confirmed topics (a profile that was not subscribed keeps
    no topic it never confirmed), with a ``consent_given`` ledger entry: source, wording version, the
    evidence of this click and, for a request kept aside, that of the request. An address on the
    suppression list because its profile was erased leaves it: a new consent is given.
    """
    for _attempt in range(2):
        found = confirmation(adapters, token)
        profile, topics, pending = found.profile, found.topics, found.pending
        if pending is None and profile.status == SubscriptionStatus.SUBSCRIBED:
            return profile
        if pending is not None and pending.confirmed_at is not None:
            return profile
        now = adapters.clock()
        consent = adapters.catalog.current_consent(now.date())
        updated, changes = _subscribed(profile, topics, now)
        updated.consent_version = consent.version
        updated.subscribed_at = now
        detail = evidence.as_detail()
        if pending is not None:
            detail |= {f"request_{name}": value for name, value in pending.evidence.items()}
            detail |= {"requested_at": pending.requested_at.isoformat(), "consent_requested": pending.consent_requested}
            detail["subscription_request"] = pending.request_id  # names the confirmation email it answers
        entry = LedgerEntry(
            profile_id=profile.id,
            at=now,
            kind=LedgerKind.CONSENT_GIVEN,
            source=Source.CONFIRMATION_LINK,
            consent_version=consent.version,
            topics=topics,
            changes=changes,
            detail=detail,
            event=OutboxEvent(
                type="Subscribed",
                detail={
                    "profileId": profile.id,
                    "topics": topics,
                    "consentVersion": consent.version,
                    "source": Source.CONFIRMATION_LINK.value,
                },
            ),
        )
        hashed = address_hash(profile.email)
        try:
            adapters.repository.confirm_subscription(
                updated,
                profile.version,
                [entry],
                keep=profile.pending_expires_at is not None,
                pending=pending,
                address_hash=hashed,
                lift_erasure=adapters.repository.suppression_reason(hashed) == ERASED,
                now=now,
            )
        except VersionConflict:
            continue
        except NotFound:
            raise InvalidToken("confirm") from None
        logger.info("subscription confirmed", extra={"profile_id": profile.id})
        return updated
    raise VersionConflict(-1)


def _subscribed(profile: Profile, topics: list[str], now: dt.datetime) -> tuple[Profile, list[Change]]:
    """``profile`` as a subscriber of ``topics``, and the changes that makes."""
    updated = profile.model_copy(deep=True)
    changes: list[Change] = []
    if profile.status != SubscriptionStatus.SUBSCRIBED:
        changes.append(Change(field="status", before=profile.status.value, after=SubscriptionStatus.SUBSCRIBED.value))
        for topic_id, on in profile.preferences.topics.items():
            if on and topic_id not in topics:  # never confirmed: not subscribed now either
                changes.append(Change(field=f"preferences.topics.{topic_id}", before=True, after=False))
                updated.preferences.topics[topic_id] = False
    for topic_id in topics:
        if not profile.preferences.topics.get(topic_id):
            changes.append(Change(field=f"preferences.topics.{topic_id}", before=False, after=True))
            updated.preferences.topics[topic_id] = True
    updated.status = SubscriptionStatus.SUBSCRIBED
    updated.pending_expires_at = None
    updated.version = profile.version + 1
    updated.updated_at = now
    return updated, changes


def unsubscribe_target(adapters: Adapters, token: str) -> Profile:
    """The profile an unsubscribe link is for. Signing out elsewhere never breaks unsubscribing."""
    profile_id, _version = adapters.signer().verify(token, Purpose.UNSUBSCRIBE)
    try:
        return adapters.repository.get(profile_id)
    except NotFound:
        raise InvalidToken("unsubscribe") from None


def opt_down(
    adapters: Adapters, profile_id: str, patch: ProfilePatch, reason: str, evidence: ClientEvidence
) -> Profile:
    """Stay, with less: fewer topics, a lower frequency or a pause. Recorded as the choice made."""
    detail = {"unsubscribe_choice": "opt_down", "reason": _reason(reason), **evidence.as_detail()}
    for _attempt in range(2):
        current = adapters.repository.get(profile_id)
        updated, changes = apply_patch(current, patch, adapters.catalog, adapters.clock())
        try:
            return save_changes(adapters, current, updated, changes, Source.PAGE, detail)
        except VersionConflict:
            continue
    raise VersionConflict(-1)


def unsubscribe(
    adapters: Adapters, profile_id: str, source: Source, reason: str, evidence: ClientEvidence, note: str = ""
) -> bool:
    """Leave every topic. Idempotent: False when the profile was already unsubscribed.

    ``note``: the customer's own words for the reason "other", kept in the withdrawal's ledger entry
    only (never logged, never on the bus).
    """
    for _attempt in range(2):
        current = adapters.repository.get(profile_id)
        if current.status == SubscriptionStatus.UNSUBSCRIBED:
            return False
        now = adapters.clock()
        withdrawn = receiving_topics(current)
        updated = current.model_copy(deep=True)
        updated.status = SubscriptionStatus.UNSUBSCRIBED
        updated.preferences.topics = dict.fromkeys(current.preferences.topics, False)
        # Leaving ends the SMS consents too: subscribing again later never brings SMS back unasked.
        for topic, channels in current.preferences.channels.items():
            kept: list[ChannelId] = [channel for channel in channels if channel != "sms"]
            if kept:
                updated.preferences.channels[topic] = kept
            else:
                del updated.preferences.channels[topic]
        updated.pending_expires_at = None
        updated.version = current.version + 1
        updated.updated_at = now
        detail = {"unsubscribe_choice": "leave", "reason": _reason(reason), **evidence.as_detail()}
        if note and detail["reason"] == "other":
            detail["reason_text"] = note[:MAX_NOTE]
        entry = LedgerEntry(
            profile_id=profile_id,
            at=now,
            # Leaving before any consent was given (pending, or a shop customer) withdraws none.
            kind=LedgerKind.CONSENT_WITHDRAWN if withdrawn else LedgerKind.PROFILE_CHANGED,
            source=source,
            consent_version=current.consent_version if withdrawn else None,
            topics=withdrawn,
            detail=detail,
            changes=[Change(field="status", before=current.status.value, after="unsubscribed")],
            event=OutboxEvent(
                type="Unsubscribed", detail={"profileId": profile_id, "topics": withdrawn, "source": source.value}
            ),
        )
        entries = [entry, *sms_consents(adapters, current, updated, source, detail)]
        try:
            adapters.repository.save(updated, current.version, entries, keep=current.pending_expires_at is not None)
        except VersionConflict:
            continue
        logger.info("unsubscribed", extra={"profile_id": profile_id, "source": source.value})
        return True
    raise VersionConflict(-1)


def _reason(value: str) -> str:
    return value if value in UNSUBSCRIBE_REASONS else ""


class Choice(StrEnum):
    """What the unsubscribe page's form ended in."""

    UNSUBSCRIBED = "unsubscribed"
    ALREADY_UNSUBSCRIBED = "already_unsubscribed"
    STAYED = "stayed"


def leave(
    adapters: Adapters, profile_id: str, source: Source, reason: str, evidence: ClientEvidence, note: str = ""
) -> Choice:
    """Unsubscribe from everything (idempotent); ``note`` as in :func:`unsubscribe`."""
    if unsubscribe(adapters, profile_id, source, reason, evidence, note):
        return Choice.UNSUBSCRIBED
    return Choice.ALREADY_UNSUBSCRIBED


def opt_down_or_leave(
    adapters: Adapters, profile_id: str, patch: ProfilePatch, reason: str, evidence: ClientEvidence
) -> Choice:
    """The opt-down offer: fewer topics, lower frequency, a pause. Keeping no topic at all is leaving."""
    if patch.preferences is not None and not any((patch.preferences.topics or {}).values()):
        return leave(adapters, profile_id, Source.PAGE, reason, evidence)
    opt_down(adapters, profile_id, patch, reason, evidence)
    return Choice.STAYED


def subscribe_again(adapters: Adapters, profile: Profile, topics: list[str], evidence: ClientEvidence) -> None:
    """A signed-in customer without a subscription asks for one: the same double opt-in as the
    subscribe form's (kept aside until confirmed), sent at once: the owner of the address is signed
    in, so there is nothing to hide from them and no stranger's inbox to protect."""
    wanted = checked_topics(adapters.catalog, topics)
    subscribe(adapters, _owner_request(adapters, profile, wanted, evidence))


def resend_confirmation(adapters: Adapters, profile: Profile, evidence: ClientEvidence) -> None:
    """The confirmation email once more for a pending subscription."""
    if profile.status == SubscriptionStatus.PENDING:
        subscribe(adapters, _owner_request(adapters, profile, profile.preferences.subscribed_topics(), evidence))


def _owner_request(adapters: Adapters, profile: Profile, topics: list[str], evidence: ClientEvidence) -> AddressRequest:
    return AddressRequest(
        kind="subscribe",
        email=profile.email,
        base_url=adapters.settings.public_base_url,
        requested_at=adapters.clock(),
        topics=tuple(topics),
        locale=profile.locale,
        evidence=evidence.as_detail(),
    )
