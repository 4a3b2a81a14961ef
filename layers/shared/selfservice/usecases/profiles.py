"""A profile's data: read, find, create, change (optimistic locking, ledger and consents in the same write)."""

from __future__ import annotations

from aws_lambda_powertools import Logger

from selfservice.domain.changes import ProfilePatch, apply_patch, checked_email, default_preferences
from selfservice.domain.consent import check_topics_switchable
from selfservice.domain.errors import AlreadyExists, MissingFields, NotFound, VersionConflict
from selfservice.domain.models import (
    Language,
    LedgerEntry,
    LedgerKind,
    Profile,
    Source,
    SubscriptionStatus,
    address_hash,
)
from selfservice.domain.review import missing_required_fields
from selfservice.usecases import subscription
from selfservice.usecases.changes import save_changes
from selfservice.usecases.ports import Adapters

logger = Logger(child=True)


def get(adapters: Adapters, profile_id: str) -> Profile:
    return adapters.repository.get(profile_id)


def find(adapters: Adapters, email: str) -> Profile:
    """The profile of an address, read as :func:`create` reads it (so each way of writing an address
    that creates a profile also finds it); :class:`InvalidInput` for what is not an address."""
    profile = adapters.repository.find_by_email(checked_email(email))
    if profile is None:
        raise NotFound("email")
    return profile


def history(adapters: Adapters, profile_id: str, limit: int = 100) -> list[LedgerEntry]:
    adapters.repository.get(profile_id)
    return adapters.repository.history(profile_id, limit)


def create(
    adapters: Adapters,
    email: str,
    locale: Language,
    initial: ProfilePatch,
    subscribe: list[str] | None,
    source: Source,
) -> Profile:
    """A new profile; with ``subscribe`` it stays pending until the customer confirms the email."""
    catalog = adapters.catalog
    now = adapters.clock()
    email = checked_email(email)
    if adapters.repository.find_by_email(email) is not None:
        raise AlreadyExists(email)
    blank = Profile(
        email=email, locale=locale, preferences=default_preferences(catalog), created_at=now, updated_at=now
    )
    profile, changes = apply_patch(blank, initial, catalog, now)
    check_topics_switchable(blank, profile)  # topics come with ``subscribe`` (a double opt-in) only
    profile.version = 1
    entry = LedgerEntry(profile_id=profile.id, at=now, kind=LedgerKind.PROFILE_CREATED, source=source, changes=changes)
    opt_in = subscribe is not None
    if subscribe is not None and adapters.repository.is_suppressed(address_hash(email)):
        # A hard-bounced, complaining or erased address: no confirmation email, no subscription.
        logger.info("opt-in for a suppressed address not started")
        opt_in = False
    if opt_in and subscribe is not None:
        topics = subscription.checked_topics(catalog, subscribe)
        profile.status = SubscriptionStatus.PENDING
        profile.pending_expires_at = now + subscription.CONFIRMATION_WINDOW
        profile.preferences.topics.update(dict.fromkeys(topics, True))
        entry.topics = topics
        entry.detail = {"consent_requested": catalog.current_consent(now.date()).version}
    adapters.repository.create(profile, [entry])
    logger.info("profile created", extra={"profile_id": profile.id, "source": source.value})
    if opt_in:
        subscription.send_confirmation(adapters, profile, profile.preferences.subscribed_topics())
    return profile


def update(
    adapters: Adapters,
    current: Profile,
    patch: ProfilePatch,
    expected_version: int | None,
    source: Source,
    evidence: dict[str, str] | None = None,
) -> Profile:
    """Apply ``patch`` to ``current`` (as just read); one conditional transaction with its ledger entries.

    With ``expected_version`` a stale caller gets :class:`VersionConflict`. Without it the patch
    applies to ``current`` — still conditional, so a concurrent write in between also gives a
    conflict rather than a lost update. ``evidence`` goes with any consent given or withdrawn.
    """
    if expected_version is not None and expected_version != current.version:
        raise VersionConflict(expected_version, current.version)
    now = adapters.clock()
    updated, changes = apply_patch(current, patch, adapters.catalog, now)
    return save_changes(adapters, current, updated, changes, source, evidence or {})


def set_language(adapters: Adapters, current: Profile, language: Language, source: Source) -> Profile:
    """The language of the pages and of every email from now on (a language switch on a page)."""
    if current.locale == language:
        return current
    try:
        return update(adapters, current, ProfilePatch(locale=language), None, source)
    except VersionConflict:
        return update(adapters, adapters.repository.get(current.id), ProfilePatch(locale=language), None, source)


def update_by_id(
    adapters: Adapters,
    profile_id: str,
    patch: ProfilePatch,
    expected_version: int | None,
    source: Source,
    evidence: dict[str, str] | None = None,
) -> Profile:
    """:func:`update` for a caller that has not read the profile (the JSON API)."""
    return update(adapters, adapters.repository.get(profile_id), patch, expected_version, source, evidence)


def confirm_all(adapters: Adapters, current: Profile, expected_version: int, source: Source) -> Profile:
    """ "Everything is still correct": every stored field counts as confirmed now.

    Not while required fields are empty (:class:`MissingFields`): the customer is led to them.
    """
    if expected_version != current.version:
        raise VersionConflict(expected_version, current.version)
    if missing := missing_required_fields(current, adapters.catalog):
        raise MissingFields(missing)
    now = adapters.clock()
    updated = current.model_copy(deep=True)
    for value in updated.fields.values():
        value.confirmed_at = now
    updated.last_reviewed_at = now
    updated.updated_at = now
    updated.version = current.version + 1
    entry = LedgerEntry(
        profile_id=current.id,
        at=now,
        kind=LedgerKind.REVIEW_CONFIRMED,
        source=source,
        detail={"fields": ",".join(sorted(updated.fields))},
    )
    adapters.repository.save(updated, current.version, [entry])
    logger.info("profile confirmed", extra={"profile_id": current.id, "source": source.value})
    return updated
