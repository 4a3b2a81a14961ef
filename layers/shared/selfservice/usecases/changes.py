"""Writing a changed profile: the change, the consents it gives or withdraws, the events, in one place."""

from __future__ import annotations

from aws_lambda_powertools import Logger

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
    settle_status(updated, changes)
    now = updated.updated_at
    wording = adapters.catalog.current_consent(now.date()).version
    consents = consent_entries(current, updated, ConsentContext(source, now, wording, evidence))
    if any(entry.kind == LedgerKind.CONSENT_GIVEN for entry in consents):
        updated.consent_version = wording
    consents += sms_consents(adapters, current, updated, source, evidence)
    change = LedgerEntry(
        profile_id=current.id,
        at=now,
        kind=LedgerKind.PROFILE_CHANGED,
        source=source,
        changes=changes,
        detail=evidence,
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
                detail=evidence,
            )
            consents.append(carrier)
        carrier.event = OutboxEvent(
            type="Unsubscribed", detail={"profileId": current.id, "topics": withdrawn, "source": source.value}
        )
    adapters.repository.save(
        updated,
        current.version,
        [change, *consents],
        previous_email=current.email,
        previous_verified_phone=current.verified_phone,
        sms_code_used=sms_code_used,
    )
    logger.info(
        "profile changed",
        extra={"profile_id": current.id, "fields": [c.field for c in changes], "source": source.value},
    )
    return updated


def sms_consents(
    adapters: Adapters, current: Profile, updated: Profile, source: Source, evidence: dict[str, str]
) -> list[LedgerEntry]:
    """The SMS consent entries of a change (given or withdrawn) under the SMS wording in force; the
    wording is recorded on ``updated`` when one is given."""
    if adapters.catalog.sms is None:
        return []
    now = updated.updated_at
    wording = adapters.catalog.sms.current_consent(now.date()).version
    entries = sms_consent_entries(
        current, updated, ConsentContext(source, now, wording, evidence), sms_receiving_topics
    )
    if any(entry.kind == LedgerKind.CONSENT_GIVEN for entry in entries):
        updated.sms_consent_version = wording
    return entries
