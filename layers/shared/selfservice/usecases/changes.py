"""Writing a changed profile: the change, the consents it gives or withdraws, the events, in one place."""

from __future__ import annotations

from aws_lambda_powertools import Logger

from selfservice.catalog import Catalog
from selfservice.domain.changes import describe
from selfservice.domain.consent import (
    ConsentContext,
    check_topics_switchable,
    consent_entries,
    receiving_topics,
    settle_status,
    sms_consent_entries,
)
from selfservice.domain.models import (
    Change,
    LedgerEntry,
    LedgerKind,
    OutboxEvent,
    Profile,
    Source,
    SubscriptionStatus,
)
from selfservice.domain.sms import sms_receiving_topics
from selfservice.usecases.ports import Adapters

logger = Logger(child=True)


def save_changes(
    adapters: Adapters,
    current: Profile,
    updated: Profile,
    changes: list[Change],
    source: Source,
    evidence: dict[str, str],
    *,
    sms_code_used: str | None = None,
) -> Profile:
    """Write a changed profile with its ledger: the change, and each consent it gives or withdraws.

    The one place topic switches become consent entries, whichever door they came through; a
    confirmed subscription left without topics becomes an unsubscribe here. ``evidence`` (who, how,
    and e.g. the less-mail form's choice) goes with the change and each consent entry. Consents to
    SMS (a number confirmed, SMS switched on or off for a topic, a STOP) are entries of their own
    (``detail["channel"] = "sms"``) under the catalog's SMS wording. ``sms_code_used``: the digest of
    the SMS code that confirmed the number, used up in the same write (a second use finds it gone).
    """
    if not changes:
        return current
    check_topics_switchable(current, updated)
    now = updated.updated_at
    wording = adapters.catalog.current_consent(now.date()).version
    entries = change_entries(
        adapters.catalog, current, updated, changes, ConsentContext(source, now, wording, evidence)
    )
    adapters.repository.save(
        updated,
        current.version,
        entries,
        previous_email=current.email,
        previous_verified_phone=current.verified_phone,
        sms_code_used=sms_code_used,
    )
    logger.info(
        "profile changed",
        extra={"profile_id": current.id, "fields": [c.field for c in changes], "source": source.value},
    )
    return updated


def change_entries(
    catalog: Catalog, current: Profile, updated: Profile, changes: list[Change], consent: ConsentContext
) -> list[LedgerEntry]:
    """The ledger entries of a change (``updated`` is settled and given its wording versions here):
    the change with its ``ProfileChanged`` event, one entry per consent given or withdrawn (email and
    SMS), and the ``Subscribed``/``Unsubscribed`` event on the consent entry that makes it.

    ``consent`` says through which door, when and under which wording a topic was switched; the
    change itself happened at ``updated.updated_at`` (an imported consent was given earlier).
    """
    source, evidence, now = consent.source, consent.evidence, updated.updated_at
    settle_status(updated, changes)
    consents = consent_entries(current, updated, consent)
    if any(entry.kind == LedgerKind.CONSENT_GIVEN for entry in consents):
        updated.consent_version = consent.wording_version
    consents += _sms_entries(catalog, current, updated, source, evidence)
    change = LedgerEntry(
        profile_id=current.id,
        at=now,
        kind=LedgerKind.PROFILE_CHANGED,
        source=source,
        changes=changes,
        detail=dict(evidence),
        event=OutboxEvent(
            type="ProfileChanged",
            detail={
                "profileId": current.id,
                "version": updated.version,
                "source": source.value,
                "changes": describe(changes),
            },
        ),
    )
    given = next((e for e in consents if e.kind == LedgerKind.CONSENT_GIVEN and "channel" not in e.detail), None)
    if updated.status != current.status and updated.status == SubscriptionStatus.SUBSCRIBED and given is not None:
        # Subscribed rides on the consent that makes the profile a subscriber (an import's, here).
        given.event = subscribed_event(current.id, given.topics, consent.wording_version, source)
    if updated.status != current.status and updated.status == SubscriptionStatus.UNSUBSCRIBED:
        # Unsubscribed rides on the withdrawal of the topics the customer received (one event per entry).
        withdrawn = receiving_topics(current)
        carrier = next(
            (e for e in consents if e.kind == LedgerKind.CONSENT_WITHDRAWN and "channel" not in e.detail), None
        )
        if carrier is None:
            carrier = LedgerEntry(
                profile_id=current.id,
                at=now,
                kind=LedgerKind.CONSENT_WITHDRAWN,
                source=source,
                consent_version=current.consent_version,
                detail=dict(evidence),
            )
            consents.append(carrier)
        carrier.event = OutboxEvent(
            type="Unsubscribed", detail={"profileId": current.id, "topics": withdrawn, "source": source.value}
        )
    return [change, *consents]


def subscribed_event(profile_id: str, topics: list[str], wording_version: str, source: Source) -> OutboxEvent:
    """``Subscribed``: a profile became a subscriber of ``topics`` (README: Events)."""
    return OutboxEvent(
        type="Subscribed",
        detail={"profileId": profile_id, "topics": topics, "consentVersion": wording_version, "source": source.value},
    )


def sms_consents(
    adapters: Adapters, current: Profile, updated: Profile, source: Source, evidence: dict[str, str]
) -> list[LedgerEntry]:
    """The SMS consent entries of a change (given or withdrawn) under the SMS wording in force; the
    wording is recorded on ``updated`` when one is given."""
    return _sms_entries(adapters.catalog, current, updated, source, evidence)


def _sms_entries(
    catalog: Catalog, current: Profile, updated: Profile, source: Source, evidence: dict[str, str]
) -> list[LedgerEntry]:
    if catalog.sms is None:
        return []
    now = updated.updated_at
    wording = catalog.sms.current_consent(now.date()).version
    entries = sms_consent_entries(
        current, updated, ConsentContext(source, now, wording, evidence), sms_receiving_topics
    )
    if any(entry.kind == LedgerKind.CONSENT_GIVEN for entry in entries):
        updated.sms_consent_version = wording
    return entries
