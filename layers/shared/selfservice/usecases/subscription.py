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
from selfservice.domain.changes import ProfilePatch, apply_patch, checked_email, default_preferences, describe
from selfservice.domain.errors import AlreadyExists, InvalidInput, NotFound, VersionConflict
from selfservice.domain.models import (
    Change,
    Language,
    LedgerEntry,
    LedgerKind,
    Profile,
    Source,
    SubscriptionStatus,
    address_hash,
)
from selfservice.tokens import InvalidToken, Purpose
from selfservice.usecases import limits
from selfservice.usecases.access import link
from selfservice.usecases.ports import Adapters, AddressRequest

logger = Logger(child=True)

CONFIRMATION_WINDOW = dt.timedelta(hours=48)
UNSUBSCRIBE_REASONS = ("too_many", "not_relevant", "never_signed_up", "other")


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


def request_subscription(
    adapters: Adapters, address: str, topics: list[str], locale: Language, evidence: ClientEvidence
) -> bool:
    """The page's part of a double opt-in: check the form, count it against the limits, hand it over.

    Whether the address is known, subscribed or suppressed is decided later (:func:`subscribe`):
    every address gets the same work here, so neither the answer nor its time tells them apart.
    InvalidInput for a wrong address or topic; False when over a limit (nothing handed over).
    """
    email = checked_email(address)
    wanted = checked_topics(adapters.catalog, topics)
    if not limits.admitted(adapters, "subscribe", email, evidence.ip):
        return False
    adapters.handoff.submit(
        AddressRequest(
            kind="subscribe",
            email=email,
            base_url=adapters.settings.public_base_url,
            requested_at=adapters.clock(),
            topics=tuple(wanted),
            locale=locale,
            evidence=evidence.as_detail(),
        )
    )
    return True


def subscribe(adapters: Adapters, request: AddressRequest) -> str:
    """The hand-off's part of a double opt-in: a pending profile and a confirmation email (valid 48
    hours). Confirmed subscribers and suppressed addresses get none. Returns what happened."""
    now = adapters.clock()
    email, wanted, source = request.email, list(request.topics), Source.PAGE
    hashed = address_hash(email)
    if adapters.repository.is_suppressed(hashed):
        logger.info("subscribe for a suppressed address ignored")
        return "suppressed"
    profile = adapters.repository.find_by_email(email)
    if profile is not None and profile.status == SubscriptionStatus.SUBSCRIBED:
        logger.info("subscribe for a confirmed subscriber ignored", extra={"profile_id": profile.id})
        return "subscribed_already"
    consent = adapters.catalog.current_consent(now.date())
    request_detail = {"consent_requested": consent.version, **request.evidence}
    if profile is None:
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
            source=source,
            topics=wanted,
            detail=request_detail,
        )
        try:
            adapters.repository.create(profile, [entry])
        except AlreadyExists:
            return "raced"
    else:
        profile = _mark_pending(adapters, profile, wanted, source, request_detail, now)
    send_confirmation(adapters, profile, wanted)
    return "sent"


def _mark_pending(
    adapters: Adapters, profile: Profile, wanted: list[str], source: Source, detail: dict[str, str], now: dt.datetime
) -> Profile:
    updated = profile.model_copy(deep=True)
    changes = []
    if updated.status != SubscriptionStatus.PENDING:
        changes.append(Change(field="status", before=updated.status.value, after=SubscriptionStatus.PENDING.value))
        updated.status = SubscriptionStatus.PENDING
    for topic_id in wanted:
        if not updated.preferences.topics.get(topic_id):
            changes.append(Change(field=f"preferences.topics.{topic_id}", before=False, after=True))
            updated.preferences.topics[topic_id] = True
    if profile.status == SubscriptionStatus.PENDING:
        updated.pending_expires_at = now + CONFIRMATION_WINDOW
    updated.version = profile.version + 1
    updated.updated_at = now
    entry = LedgerEntry(
        profile_id=profile.id,
        at=now,
        kind=LedgerKind.PROFILE_CHANGED,
        source=source,
        changes=changes,
        topics=wanted,
        detail=detail,
    )
    adapters.repository.save(updated, profile.version, [entry])
    return updated


def send_confirmation(adapters: Adapters, profile: Profile, topics: list[str]) -> None:
    email = adapters.renderer.render(
        "confirm_subscription",
        profile.locale,
        marketing=False,
        link=link(adapters, profile, Purpose.CONFIRM, "/confirm"),
        topics=[t.name.get(profile.locale) for topic_id in topics if (t := adapters.catalog.topic(topic_id))],
        recipient=profile.email,
        company=adapters.settings.company_name,
    )
    adapters.mailer.send(profile, email, Source.SYSTEM, now=adapters.clock())
    logger.info("confirmation email sent", extra={"profile_id": profile.id})


def pending_profile(adapters: Adapters, token: str) -> Profile:
    """The profile a confirmation link is for (raises InvalidToken/ExpiredToken)."""
    profile_id, _version = adapters.signer().verify(token, Purpose.CONFIRM)
    try:
        profile = adapters.repository.get(profile_id)
    except NotFound:
        raise InvalidToken("confirm") from None
    if profile.status not in (SubscriptionStatus.PENDING, SubscriptionStatus.SUBSCRIBED):
        raise InvalidToken("confirm")
    return profile


def confirm_subscription(adapters: Adapters, token: str, evidence: ClientEvidence) -> Profile:
    """The POST behind the confirm button: records the consent. Confirming twice changes nothing."""
    profile = pending_profile(adapters, token)
    if profile.status == SubscriptionStatus.SUBSCRIBED:
        return profile
    now = adapters.clock()
    consent = adapters.catalog.current_consent(now.date())
    topics = profile.preferences.subscribed_topics()
    updated = profile.model_copy(
        update={
            "status": SubscriptionStatus.SUBSCRIBED,
            "consent_version": consent.version,
            "pending_expires_at": None,
            "version": profile.version + 1,
            "updated_at": now,
        }
    )
    entry = LedgerEntry(
        profile_id=profile.id,
        at=now,
        kind=LedgerKind.CONSENT_GIVEN,
        source=Source.CONFIRMATION_LINK,
        consent_version=consent.version,
        topics=topics,
        detail=evidence.as_detail(),
    )
    adapters.repository.save(updated, profile.version, [entry], keep=True)
    adapters.publisher.publish(
        "Subscribed",
        {
            "profileId": profile.id,
            "topics": topics,
            "consentVersion": consent.version,
            "source": Source.CONFIRMATION_LINK.value,
        },
    )
    logger.info("subscription confirmed", extra={"profile_id": profile.id})
    return updated


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
    for _attempt in range(2):
        current = adapters.repository.get(profile_id)
        now = adapters.clock()
        updated, changes = apply_patch(current, patch, adapters.catalog, now)
        if not changes:
            return current
        detail = {"unsubscribe_choice": "opt_down", "reason": _reason(reason), **evidence.as_detail()}
        entries = [
            LedgerEntry(
                profile_id=profile_id,
                at=now,
                kind=LedgerKind.PROFILE_CHANGED,
                source=Source.PAGE,
                changes=changes,
                detail=detail,
            )
        ]
        dropped = sorted(
            t for t, on in current.preferences.topics.items() if on and not updated.preferences.topics.get(t)
        )
        if dropped:
            entries.append(
                LedgerEntry(
                    profile_id=profile_id,
                    at=now,
                    kind=LedgerKind.CONSENT_WITHDRAWN,
                    source=Source.PAGE,
                    consent_version=current.consent_version,
                    topics=dropped,
                    detail=detail,
                )
            )
        try:
            adapters.repository.save(updated, current.version, entries)
        except VersionConflict:
            continue
        adapters.publisher.publish(
            "ProfileChanged",
            {
                "profileId": profile_id,
                "version": updated.version,
                "source": Source.PAGE.value,
                "changes": describe(changes),
            },
        )
        return updated
    raise VersionConflict(-1)


def unsubscribe(adapters: Adapters, profile_id: str, source: Source, reason: str, evidence: ClientEvidence) -> bool:
    """Leave every topic. Idempotent: False when the profile was already unsubscribed."""
    for _attempt in range(2):
        current = adapters.repository.get(profile_id)
        if current.status == SubscriptionStatus.UNSUBSCRIBED:
            return False
        now = adapters.clock()
        withdrawn = current.preferences.subscribed_topics()
        updated = current.model_copy(deep=True)
        updated.status = SubscriptionStatus.UNSUBSCRIBED
        updated.preferences.topics = dict.fromkeys(current.preferences.topics, False)
        updated.pending_expires_at = None
        updated.version = current.version + 1
        updated.updated_at = now
        detail = {"unsubscribe_choice": "leave", "reason": _reason(reason), **evidence.as_detail()}
        entry = LedgerEntry(
            profile_id=profile_id,
            at=now,
            kind=LedgerKind.CONSENT_WITHDRAWN,
            source=source,
            consent_version=current.consent_version,
            topics=withdrawn,
            detail=detail,
            changes=[Change(field="status", before=current.status.value, after="unsubscribed")],
        )
        try:
            adapters.repository.save(updated, current.version, [entry], keep=current.pending_expires_at is not None)
        except VersionConflict:
            continue
        adapters.publisher.publish(
            "Unsubscribed", {"profileId": profile_id, "topics": withdrawn, "source": source.value}
        )
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


def leave(adapters: Adapters, profile_id: str, source: Source, reason: str, evidence: ClientEvidence) -> Choice:
    """Unsubscribe from everything (idempotent)."""
    if unsubscribe(adapters, profile_id, source, reason, evidence):
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
