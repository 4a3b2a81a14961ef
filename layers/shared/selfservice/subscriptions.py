"""Subscription lifecycle: double opt-in, consent ledger, opt-down instead of leaving, unsubscribe.

Every consent given or withdrawn is an append-only ledger entry with time, source, the catalog's
consent wording version, the topics it covers and a salted hash of the client's IP address and
user agent — enough to prove a consent in a dispute without keeping the raw values.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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
from selfservice.events import EventPublisher
from selfservice.mail import EmailRenderer, Mailer
from selfservice.settings import Settings
from selfservice.storage import ProfileRepository
from selfservice.tokens import InvalidToken, Purpose, TokenSigner

logger = Logger(child=True)

CONFIRMATION_WINDOW = dt.timedelta(hours=48)
CONFIRMATION_RESEND_WINDOW = dt.timedelta(minutes=10)
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


class SubscriptionUseCases:
    """Double opt-in, opt-down and unsubscribe; mixed into the service next to the profile use cases."""

    settings: Settings
    catalog: Catalog
    repository: ProfileRepository
    mailer: Mailer
    renderer: EmailRenderer
    publisher: EventPublisher
    signer: Callable[[], TokenSigner]
    clock: Callable[[], dt.datetime]

    def link(self, profile: Profile, purpose: Purpose, path: str) -> str:
        token = self.signer().issue(profile.id, profile.token_version, purpose)
        return f"{self.settings.public_base_url.rstrip('/')}{path}?token={token}"

    def _checked_topics(self, topics: list[str]) -> list[str]:
        wanted = sorted(set(topics))
        if not wanted:
            raise InvalidInput("topics", "choose at least one topic")
        for topic_id in wanted:
            topic = self.catalog.topic(topic_id)
            if topic is None or topic.hidden:
                raise InvalidInput("topics", "unknown topic")
        return wanted

    def subscribe(
        self, address: str, topics: list[str], locale: Language, source: Source, evidence: ClientEvidence
    ) -> None:
        """Start a double opt-in: a pending profile and a confirmation email (valid 48 hours).

        The caller answers the same way whatever happens here (no account enumeration). A known
        pending address gets at most one confirmation email per ten minutes; confirmed subscribers
        and suppressed addresses get none.
        """
        now = self.clock()
        email = checked_email(address)
        wanted = self._checked_topics(topics)
        hashed = address_hash(email)
        if self.repository.is_suppressed(hashed):
            logger.info("subscribe for a suppressed address ignored")
            return
        profile = self.repository.find_by_email(email)
        if profile is not None and profile.status == SubscriptionStatus.SUBSCRIBED:
            logger.info("subscribe for a confirmed subscriber ignored", extra={"profile_id": profile.id})
            return
        if not self.repository.count_attempt(f"confirm:{hashed}", 1, CONFIRMATION_RESEND_WINDOW, now):
            logger.info("confirmation email held back (one per ten minutes)")
            return
        consent = self.catalog.current_consent(now.date())
        request_detail = {"consent_requested": consent.version, **evidence.as_detail()}
        if profile is None:
            profile = Profile(
                email=email,
                locale=locale,
                status=SubscriptionStatus.PENDING,
                created_at=now,
                updated_at=now,
                preferences=default_preferences(self.catalog),
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
                self.repository.create(profile, [entry])
            except AlreadyExists:
                return
        else:
            profile = self._mark_pending(profile, wanted, source, request_detail, now)
        self._send_confirmation(profile, wanted)

    def _mark_pending(
        self, profile: Profile, wanted: list[str], source: Source, detail: dict[str, str], now: dt.datetime
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
        self.repository.save(updated, profile.version, [entry])
        return updated

    def _send_confirmation(self, profile: Profile, topics: list[str]) -> None:
        email = self.renderer.render(
            "confirm_subscription",
            profile.locale,
            marketing=False,
            link=self.link(profile, Purpose.CONFIRM, "/confirm"),
            topics=[t.name.get(profile.locale) for topic_id in topics if (t := self.catalog.topic(topic_id))],
            recipient=profile.email,
            company=self.settings.company_name,
        )
        self.mailer.send(profile, email, Source.SYSTEM, now=self.clock())
        logger.info("confirmation email sent", extra={"profile_id": profile.id})

    def pending_profile(self, token: str) -> Profile:
        """The profile a confirmation link is for (raises InvalidToken/ExpiredToken)."""
        profile_id, _version = self.signer().verify(token, Purpose.CONFIRM)
        try:
            profile = self.repository.get(profile_id)
        except NotFound:
            raise InvalidToken("confirm") from None
        if profile.status not in (SubscriptionStatus.PENDING, SubscriptionStatus.SUBSCRIBED):
            raise InvalidToken("confirm")
        return profile

    def confirm_subscription(self, token: str, evidence: ClientEvidence) -> Profile:
        """The POST behind the confirm button: records the consent. Confirming twice changes nothing."""
        profile = self.pending_profile(token)
        if profile.status == SubscriptionStatus.SUBSCRIBED:
            return profile
        now = self.clock()
        consent = self.catalog.current_consent(now.date())
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
        self.repository.save(updated, profile.version, [entry], keep=True)
        self.publisher.publish(
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

    def unsubscribe_target(self, token: str) -> Profile:
        """The profile an unsubscribe link is for. Signing out elsewhere never breaks unsubscribing."""
        profile_id, _version = self.signer().verify(token, Purpose.UNSUBSCRIBE)
        try:
            return self.repository.get(profile_id)
        except NotFound:
            raise InvalidToken("unsubscribe") from None

    def opt_down(self, profile_id: str, patch: ProfilePatch, reason: str, evidence: ClientEvidence) -> Profile:
        """Stay, with less: fewer topics, a lower frequency or a pause. Recorded as the choice made."""
        for _attempt in range(2):
            current = self.repository.get(profile_id)
            now = self.clock()
            updated, changes = apply_patch(current, patch, self.catalog, now)
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
                self.repository.save(updated, current.version, entries)
            except VersionConflict:
                continue
            self.publisher.publish(
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

    def unsubscribe(self, profile_id: str, source: Source, reason: str, evidence: ClientEvidence) -> bool:
        """Leave every topic. Idempotent: False when the profile was already unsubscribed."""
        for _attempt in range(2):
            current = self.repository.get(profile_id)
            if current.status == SubscriptionStatus.UNSUBSCRIBED:
                return False
            now = self.clock()
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
                self.repository.save(updated, current.version, [entry], keep=current.pending_expires_at is not None)
            except VersionConflict:
                continue
            self.publisher.publish(
                "Unsubscribed", {"profileId": profile_id, "topics": withdrawn, "source": source.value}
            )
            logger.info("unsubscribed", extra={"profile_id": profile_id, "source": source.value})
            return True
        raise VersionConflict(-1)


def _reason(value: str) -> str:
    return value if value in UNSUBSCRIBE_REASONS else ""


def consent_entries(entries: list[LedgerEntry]) -> list[dict[str, Any]]:
    """The consent trail of a profile (for customer service and disputes)."""
    kinds = (LedgerKind.CONSENT_GIVEN, LedgerKind.CONSENT_WITHDRAWN)
    return [entry.model_dump(mode="json") for entry in entries if entry.kind in kinds]
