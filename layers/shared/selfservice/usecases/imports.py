"""Import of a company's existing subscribers with the proof of the consent they gave elsewhere.

One call takes up to :data:`MAX_ROWS` rows and answers how many profiles were created, updated or left
unchanged, and which rows were refused with what is wrong in them (the others still import). The
rules, in the order they apply to a row:

* A row with a wrong value (address, locale, topic, field, consent) is *rejected*, with a problem per
  wrong value. ``consent.version`` must be a wording version of the catalog: the proof of a consent
  is its wording, so the wording an imported list was collected with is added to the catalog's
  ``consent_wordings`` before the import (versions are kept forever).
* An address on the suppression list (bounced, complained, erased by its owner) and a profile that is
  unsubscribed or suppressed stay as they are (*unchanged*): an import never overrides an unsubscribe.
* A new address becomes a subscribed profile of the row's topics (its consent was given elsewhere,
  with proof); an existing one receives the row's topics it does not receive yet, except a topic
  whose consent was given or withdrawn here after ``consent.givenAt`` (a newer word wins), and gets
  the row's fields it has no value for (a stored value is never overwritten). A profile that was not
  subscribed (the shop's, or pending) becomes a subscriber of exactly those topics.
* Each consent is a ``consent_given`` ledger entry with source ``import``, time ``givenAt`` (so history
  and proof stay in time order), the wording version, and in its detail ``imported=yes``, where it was
  given and the evidence supplied. Events go out through the outbox as for any change (``Subscribed``
  with source ``import``, ``ProfileChanged``). Nothing is ever emailed.

Posting the same rows again changes nothing (every row is then unchanged). Writes are packed into
transactions of up to 100 operations, each profile whole; a row whose profile changed meanwhile (or
whose address another writer claimed) is read and decided again.
"""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from selfservice.catalog import Catalog
from selfservice.domain.changes import (
    DateTimeInput,
    EmailInput,
    FieldsInput,
    Id,
    ProfilePatch,
    apply_patch,
    checked_email,
    default_preferences,
)
from selfservice.domain.consent import ConsentContext, consent_entries, receiving_topics
from selfservice.domain.errors import InvalidInput
from selfservice.domain.models import (
    Change,
    Language,
    LedgerEntry,
    LedgerKind,
    Profile,
    Source,
    SubscriptionStatus,
    address_hash,
    normalise_email,
)
from selfservice.usecases.changes import change_entries, subscribed_event
from selfservice.usecases.ports import Adapters

logger = Logger(child=True)

MAX_ROWS = 1000
"""Rows one call takes; larger lists go through an import job."""
_ROUNDS = 3
_LEDGER_READERS = 8
"""Ledger queries in flight at once (the DynamoDB client is thread-safe)."""
"""How often a row whose profile changed meanwhile is read and decided again."""

EvidenceKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,39}$")]


class ImportedConsent(BaseModel):
    """Where and when the customer gave their consent, under which wording, and its evidence."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, defer_build=True)

    givenAt: DateTimeInput
    source: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    version: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    evidence: dict[EvidenceKey, Annotated[str, StringConstraints(max_length=1000)]] | None = Field(
        default=None, max_length=20
    )


class ImportRow(BaseModel):
    """One subscriber of an import."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, defer_build=True)

    email: EmailInput
    locale: Language | None = None
    fields: FieldsInput | None = Field(default=None, max_length=64)
    topics: list[Id] = Field(min_length=1, max_length=64)
    consent: ImportedConsent


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def add(self, other: ImportReport, offset: int) -> None:
        """Add the report of the rows from ``offset`` on (a job's batch) to this one."""
        self.created += other.created
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.rejected += [{**row, "index": row["index"] + offset} for row in other.rejected]

    def as_json(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
        }


@dataclass
class _Row:
    index: int
    row: ImportRow
    email: str
    fields: dict[str, Any]
    """The row's fields in their stored form (checked against the catalog)."""

    @property
    def email_key(self) -> str:
        return normalise_email(self.email)

    @property
    def given_at(self) -> dt.datetime:
        return self.row.consent.givenAt


def _problem(path: str, reason: str) -> dict[str, str]:
    return {"field": path, "reason": reason}


def _checked(index: int, raw: Any, catalog: Catalog, now: dt.datetime) -> _Row | list[dict[str, str]]:
    """The row ready to import, or what is wrong with it (every wrong value, not only the first)."""
    try:
        row = ImportRow.model_validate(raw)
    except ValidationError as error:
        return [
            _problem(".".join(str(part) for part in e["loc"]) or "row", str(e["msg"]))
            for e in error.errors(include_url=False, include_input=False)
        ]
    problems: list[dict[str, str]] = []
    email = row.email
    try:
        email = checked_email(row.email)
    except InvalidInput as error:
        problems.append(_problem(error.field, error.message))
    for topic_id in dict.fromkeys(row.topics):
        topic = catalog.topic(topic_id)
        if topic is None:
            problems.append(_problem("topics", f"unknown topic {topic_id}"))
        elif topic.hidden:
            problems.append(_problem("topics", f"topic {topic_id} is not offered"))
        elif "email" not in topic.channels:
            problems.append(_problem("topics", f"topic {topic_id} is not sent by email"))
    consent = row.consent
    given_at = consent.givenAt if consent.givenAt.tzinfo else consent.givenAt.replace(tzinfo=dt.UTC)
    consent.givenAt = given_at
    if given_at > now:
        problems.append(_problem("consent.givenAt", "must not be in the future"))
    if given_at.year < 2000:
        problems.append(_problem("consent.givenAt", "must be in the year 2000 or later"))
    if consent.version not in {wording.version for wording in catalog.consent_wordings}:
        problems.append(
            _problem(
                "consent.version",
                "unknown consent wording version: add the wording to the catalog's consent_wordings first",
            )
        )
    fields: dict[str, Any] = {}
    if row.fields:
        blank = Profile(email="import@example.invalid", preferences=default_preferences(catalog))
        for field_id, value in row.fields.items():
            if value is None or value in ("", []):
                continue
            try:
                checked, _changes = apply_patch(blank, ProfilePatch(fields={field_id: value}), catalog, now)
            except InvalidInput as error:
                problems.append(_problem(error.field, error.message))
                continue
            fields[field_id] = checked.value_of(field_id)
    if problems:
        return problems
    return _Row(index=index, row=row, email=email, fields=fields)


def import_profiles(adapters: Adapters, rows: list[Any], evidence: dict[str, str]) -> ImportReport:
    """Import ``rows`` (each as the caller sent it); ``evidence`` says who imported (the API caller)."""
    if len(rows) > MAX_ROWS:
        raise ValueError(f"at most {MAX_ROWS} rows per call")  # the API and the job's batches never send more
    catalog, now = adapters.catalog, adapters.clock()
    report = ImportReport()
    ready: list[_Row] = []
    first_row: dict[str, int] = {}
    for index, raw in enumerate(rows):
        checked = _checked(index, raw, catalog, now)
        if isinstance(checked, list):
            report.rejected.append({"index": index, "problems": checked})
            continue
        earlier = first_row.setdefault(checked.email_key, index)
        if earlier != index:
            report.rejected.append(
                {"index": index, "problems": [_problem("email", f"the same address is in row {earlier}")]}
            )
            continue
        ready.append(checked)
    importer = _Importer(adapters, now, evidence)
    for _round in range(_ROUNDS):
        if not ready:
            break
        ready = importer.run(ready, report)
    for left in ready:
        report.rejected.append(
            {
                "index": left.index,
                "problems": [_problem("email", "the profile kept changing while it was imported: send the row again")],
            }
        )
    report.rejected.sort(key=lambda rejected: int(rejected["index"]))
    logger.info(
        "profiles imported",
        extra={
            "import_rows": len(rows),
            "import_created": report.created,
            "import_updated": report.updated,
            "import_unchanged": report.unchanged,
            "import_rejected": len(report.rejected),
        },
    )
    return report


class _Importer:
    def __init__(self, adapters: Adapters, now: dt.datetime, evidence: dict[str, str]) -> None:
        self.adapters = adapters
        self.catalog = adapters.catalog
        self.repository = adapters.repository
        self.now = now
        self.evidence = {f"imported_{name}": value for name, value in evidence.items()}

    def run(self, rows: list[_Row], report: ImportReport) -> list[_Row]:
        """Decide and write ``rows``; returns the rows to decide again (their profile changed meanwhile)."""
        claims = self.repository.email_claims([row.email_key for row in rows])
        suppressed = self.repository.suppressed_among([address_hash(row.email) for row in rows])
        profiles = {profile.id: profile for profile in self.repository.get_many(sorted(set(claims.values())))}
        newer = self._newer_consents(rows, claims, profiles)
        groups: list[list[dict[str, Any]]] = []
        written: list[tuple[_Row, bool]] = []
        for row in rows:
            if address_hash(row.email) in suppressed:
                report.unchanged += 1
                continue
            profile_id = claims.get(row.email_key)
            if profile_id is None:
                profile, entries = self._new_profile(row)
                groups.append(self.repository.create_operations(profile, entries))
                written.append((row, True))
                continue
            current = profiles.get(profile_id)
            if current is None or current.email_key != row.email_key:
                # The claim names a profile that is being erased or changing its address: read again.
                groups.append([])
                written.append((row, False))
                continue
            merged = self._merged(current, row, newer.get(row.index, set()))
            if merged is None:
                report.unchanged += 1
                continue
            updated, entries = merged
            confirmed = current.pending_expires_at is not None and updated.pending_expires_at is None
            groups.append(self.repository.save_operations(updated, current.version, entries, keep=confirmed))
            written.append((row, False))
        failed = self.repository.write_groups(groups)
        again: list[_Row] = []
        for index, (row, created) in enumerate(written):
            if index in failed or not groups[index]:
                again.append(row)
            elif created:
                report.created += 1
            else:
                report.updated += 1
        return again

    def _context(self, row: _Row) -> ConsentContext:
        consent = row.row.consent
        detail = {"imported": "yes", "imported_at": self.now.isoformat(), "consent_source": consent.source}
        detail |= {f"evidence_{name}": value for name, value in (consent.evidence or {}).items()}
        return ConsentContext(Source.IMPORT, row.given_at, consent.version, {**detail, **self.evidence})

    def _with_fields(self, profile: Profile, row: _Row) -> tuple[Profile, list[Change]]:
        """``profile`` with the row's fields it has no value for, confirmed when the consent was given."""
        missing = {name: value for name, value in row.fields.items() if profile.value_of(name) is None}
        if not missing:
            return profile.model_copy(deep=True), []
        updated, changes = apply_patch(profile, ProfilePatch(fields=missing), self.catalog, self.now)
        for name in missing:
            updated.fields[name].confirmed_at = row.given_at
        return updated, changes

    def _new_profile(self, row: _Row) -> tuple[Profile, list[LedgerEntry]]:
        blank = Profile(
            email=row.email,
            locale=row.row.locale or self.catalog.default_language,
            preferences=default_preferences(self.catalog),
            created_at=self.now,
            updated_at=self.now,
        )
        profile, changes = self._with_fields(blank, row)
        profile.version = 1
        created = LedgerEntry(
            profile_id=profile.id,
            at=self.now,
            kind=LedgerKind.PROFILE_CREATED,
            source=Source.IMPORT,
            changes=changes,
            detail=dict(self.evidence),
        )
        subscriber = profile.model_copy(deep=True)
        topics = sorted(set(row.row.topics))
        subscriber.preferences.topics.update(dict.fromkeys(topics, True))
        subscriber.status = SubscriptionStatus.SUBSCRIBED
        subscriber.consent_version = row.row.consent.version
        subscriber.subscribed_at = row.given_at
        consents = consent_entries(profile, subscriber, self._context(row))
        consents[0].event = subscribed_event(subscriber.id, topics, row.row.consent.version, Source.IMPORT)
        return subscriber, [created, *consents]

    @staticmethod
    def _wanted(current: Profile, row: _Row) -> list[str]:
        """The row's topics the profile does not receive yet; none for an unsubscribed or suppressed profile."""
        if current.status == SubscriptionStatus.UNSUBSCRIBED or current.suppressed:
            return []  # the customer's own unsubscribe (or a bounce, a complaint) is the last word
        receiving = set(receiving_topics(current))
        return [topic for topic in sorted(set(row.row.topics)) if topic not in receiving]

    def _newer_consents(
        self, rows: list[_Row], claims: dict[str, str], profiles: dict[str, Profile]
    ) -> dict[int, set[str]]:
        """For each row about an existing profile: the topics with a consent given or withdrawn after
        the row's ``givenAt`` (a Query of the profile's ledger from that time on, several at once).

        Only where one can exist: a consent entry is written with its profile (so none is newer than
        the profile's last write) and only for a topic the profile has a choice for (a topic never
        switched has no entry).
        """
        asked: dict[int, tuple[str, dt.datetime]] = {}
        for row in rows:
            current = profiles.get(claims.get(row.email_key, ""))
            if current is None or row.given_at >= current.updated_at:
                continue
            if any(topic in current.preferences.topics for topic in self._wanted(current, row)):
                asked[row.index] = (current.id, row.given_at)
        if not asked:
            return {}
        with ThreadPoolExecutor(max_workers=_LEDGER_READERS) as pool:
            found = pool.map(lambda key: self.repository.consent_topics_since(*key), asked.values())
            return dict(zip(asked, found, strict=True))

    def _merged(self, current: Profile, row: _Row, newer: set[str]) -> tuple[Profile, list[LedgerEntry]] | None:
        """The existing profile with what the row adds, and its ledger entries; None if it adds nothing.
        ``newer``: topics whose consent was given or withdrawn here after the row's (the newer word wins)."""
        if current.status == SubscriptionStatus.UNSUBSCRIBED or current.suppressed:
            return None
        wanted = [topic for topic in self._wanted(current, row) if topic not in newer]
        updated, changes = self._with_fields(current, row)
        if wanted:
            prefs = updated.preferences
            if current.status != SubscriptionStatus.SUBSCRIBED:
                # A subscriber of exactly the imported topics: none the shop or an unconfirmed opt-in asked for.
                changes.append(Change(field="status", before=current.status.value, after="subscribed"))
                updated.status = SubscriptionStatus.SUBSCRIBED
                updated.subscribed_at = row.given_at
                updated.pending_expires_at = None
                for topic_id, on in sorted(prefs.topics.items()):
                    if on and topic_id not in wanted:
                        prefs.topics[topic_id] = False
                        changes.append(Change(field=f"preferences.topics.{topic_id}", before=True, after=False))
            for topic_id in wanted:
                before = prefs.topics.get(topic_id, False)
                if before is not True:
                    prefs.topics[topic_id] = True
                    changes.append(Change(field=f"preferences.topics.{topic_id}", before=before, after=True))
        if not changes:
            return None
        updated.updated_at = self.now
        updated.version = current.version + 1
        return updated, change_entries(self.catalog, current, updated, changes, self._context(row))
