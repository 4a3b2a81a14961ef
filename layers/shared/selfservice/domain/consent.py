"""Consent per topic: which change is a consent given or withdrawn, and what the ledger proves.

Every door that switches a topic (pages, the less-mail form, one-click, the API, the double
opt-in) goes through :func:`consent_entries`, so a history never shows a withdrawal for a topic
whose consent was not recorded, and :func:`proven_topics` replayed over a profile's ledger gives
back exactly the topics it receives (:func:`receiving_topics`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from selfservice.domain.errors import InvalidInput
from selfservice.domain.models import (
    Change,
    LedgerEntry,
    LedgerKind,
    Profile,
    Source,
    SubscriptionStatus,
)


def receiving_topics(profile: Profile) -> list[str]:
    """The topics the customer receives now: only a confirmed subscription receives any."""
    if profile.status != SubscriptionStatus.SUBSCRIBED:
        return []
    return profile.preferences.subscribed_topics()


def check_topics_switchable(before: Profile, after: Profile) -> None:
    """A topic can be switched on only within a confirmed (or pending) double opt-in.

    A profile without consent (created by the shop, or unsubscribed) needs a new double opt-in;
    switching a topic on directly would be a consent nobody can prove.
    """
    if before.status in (SubscriptionStatus.SUBSCRIBED, SubscriptionStatus.PENDING):
        return
    for topic_id in sorted(set(after.preferences.subscribed_topics()) - set(before.preferences.subscribed_topics())):
        raise InvalidInput(
            f"preferences.topics.{topic_id}",
            "a topic can be switched on only after the customer has confirmed a subscription by email",
        )


def settle_status(profile: Profile, changes: list[Change]) -> None:
    """A confirmed subscription left without any topic is an unsubscribe (on every door alike)."""
    if profile.status == SubscriptionStatus.SUBSCRIBED and not profile.preferences.subscribed_topics():
        profile.status = SubscriptionStatus.UNSUBSCRIBED
        changes.append(Change(field="status", before=SubscriptionStatus.SUBSCRIBED.value, after=profile.status.value))


@dataclass(frozen=True)
class ConsentContext:
    """Who switched, through which door, under which wording, with what evidence."""

    source: Source
    at: dt.datetime
    wording_version: str
    evidence: dict[str, str] = field(default_factory=dict)


def consent_entries(before: Profile, after: Profile, context: ConsentContext) -> list[LedgerEntry]:
    """One ``consent_given`` for the topics now received that were not, one ``consent_withdrawn``
    for the topics no longer received; nothing when the received topics did not change."""
    evidence = dict(context.evidence)
    versions = (context.wording_version, before.consent_version)
    return _switched(before, after, context, receiving_topics, versions, (evidence, evidence))


def sms_consent_entries(
    before: Profile, after: Profile, context: ConsentContext, received: Callable[[Profile], list[str]]
) -> list[LedgerEntry]:
    """Like :func:`consent_entries`, for the topics received by SMS (``received``): given when the
    number is confirmed or SMS is chosen for one more topic, withdrawn when SMS is switched off, the
    number changes or a STOP arrives. Each names the number it is about (the proof needs it)."""
    versions = (context.wording_version, before.sms_consent_version)
    given = {**context.evidence, "channel": SMS, "phone": after.verified_phone or ""}
    withdrawn = {**context.evidence, "channel": SMS, "phone": before.verified_phone or ""}
    return _switched(before, after, context, received, versions, (given, withdrawn))


def _switched(
    before: Profile,
    after: Profile,
    context: ConsentContext,
    received: Callable[[Profile], list[str]],
    versions: tuple[str | None, str | None],
    details: tuple[dict[str, str], dict[str, str]],
) -> list[LedgerEntry]:
    """A ``consent_given`` for the topics ``received`` now and not before, a ``consent_withdrawn`` for the
    reverse, each with its wording version and detail (given, withdrawn); none for an empty set."""
    was, now = set(received(before)), set(received(after))
    switched = [
        (LedgerKind.CONSENT_GIVEN, sorted(now - was), versions[0], details[0]),
        (LedgerKind.CONSENT_WITHDRAWN, sorted(was - now), versions[1], details[1]),
    ]
    return [
        LedgerEntry(
            profile_id=after.id,
            at=context.at,
            kind=kind,
            source=context.source,
            consent_version=version,
            topics=topics,
            detail=dict(detail),
        )
        for kind, topics, version, detail in switched
        if topics
    ]


@dataclass(frozen=True)
class TopicProof:
    """A topic's consent state as the ledger proves it, with the entry that set it."""

    topic: str
    receiving: bool
    since: dt.datetime
    entry_id: str
    source: Source
    wording_version: str | None


SMS = "sms"
"""``detail["channel"]`` of a consent entry for SMS (entries without a channel are the topics' own)."""


def proven_topics(ledger: list[LedgerEntry], channel: str | None = None) -> dict[str, TopicProof]:
    """Replay the consent entries (any order in, oldest first applied): each topic's last word.

    ``channel`` None replays the topics' own consents (by the email double opt-in); ``"sms"`` the
    consents to receive topics by SMS at the confirmed number.
    """
    state: dict[str, TopicProof] = {}
    for entry in sorted(ledger, key=lambda e: e.at):
        if entry.kind not in (LedgerKind.CONSENT_GIVEN, LedgerKind.CONSENT_WITHDRAWN):
            continue
        if entry.detail.get("channel") != channel:
            continue
        for topic_id in entry.topics:
            state[topic_id] = TopicProof(
                topic=topic_id,
                receiving=entry.kind == LedgerKind.CONSENT_GIVEN,
                since=entry.at,
                entry_id=entry.id,
                source=entry.source,
                wording_version=entry.consent_version,
            )
    return state
