"""Profile review campaigns: the use cases the review state machines call, step by step.

Periodic (``statemachines/periodic_review.asl.json``): :meth:`ReviewCampaigns.plan_run` fixes
the run time and the index shards, :meth:`~ReviewCampaigns.select_page` reads one page of due
profiles of a shard from the sparse ReviewDue index, :meth:`~ReviewCampaigns.review_batch`
checks, sends and records a page, and :meth:`~ReviewCampaigns.finish_run` closes the run
summary. Event-triggered (``statemachines/event_review.asl.json``):
:meth:`~ReviewCampaigns.plan_event` validates a shop or customer-service event and says until
when to wait, :meth:`~ReviewCampaigns.review_after_event` re-reads the profile and runs the same
check/send/record step.

Every step can be retried: a batch adds its counts to the run summary only when it is done,
and a profile already mailed by this run (``Profile.last_review_campaign``) is counted, not
mailed again.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from botocore.exceptions import ClientError
from pydantic import AwareDatetime, BaseModel, ConfigDict, StringConstraints, ValidationError

from selfservice import aws
from selfservice.catalog import Catalog
from selfservice.domain.changes import MAX_EMAIL_LENGTH, checked_email, mark_suppressed
from selfservice.domain.errors import DomainError, InvalidInput, NotFound, TemporarilyUnavailable, VersionConflict
from selfservice.domain.models import LedgerEntry, LedgerKind, Profile, Source, address_hash
from selfservice.domain.review import (
    ReviewNeed,
    SkipReason,
    next_review_at,
    record_review_email,
    review_email_skip_reason,
    review_need,
)
from selfservice.mail import Mailer
from selfservice.service import ProfileService, build_service
from selfservice.settings import Settings
from selfservice.storage import CampaignRunRepository, review_shard_key
from selfservice.tokens import LIFETIMES, Purpose

logger = Logger(child=True)

PERIODIC = "periodic"
SENDS_PER_SECOND_PER_WORKER = 10
"""What one sender invocation achieves serially (one SES call plus one write per profile)."""
NOT_FOUND = "not_found"
"""Summary key for profiles erased between selection and sending."""
_SES_THROTTLING = {"TooManyRequestsException", "Throttling", "ThrottlingException"}
_MAX_FUTURE = dt.timedelta(days=1)
"""How far in the future an event's occurredAt may lie (clock skew), before it counts as malformed."""
_RECORD_ATTEMPTS = 3
_RECORD_PAUSES = (0.5, 1.0, 2.0, 4.0)
"""Seconds to wait before each further attempt to record a sent email while DynamoDB throttles."""
RUN_TIMEOUT = dt.timedelta(hours=23)
"""The longest a periodic run may take (``TimeoutSeconds`` of periodic_review), and so its claim.

What a run does not reach in that time is still due, and the next day's run takes it."""


class MalformedEvent(DomainError):
    """A review event that can never be processed (missing or invalid fields); never retried."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def timestamp(moment: dt.datetime) -> str:
    """ISO-8601 in UTC with a ``Z``, as Step Functions' TimestampPath and the index expect."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(value: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


# --- results -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunPlan:
    run_id: str
    run_at: dt.datetime
    shards: list[str]
    max_concurrency: int
    skipped: dict[str, Any] | None = None
    """The run's summary when it did not start because another run still holds the claim."""

    def as_state(self) -> dict[str, Any]:
        return {
            "runId": self.run_id,
            "runAt": timestamp(self.run_at),
            "shards": self.shards,
            "maxConcurrency": self.max_concurrency,
        }


@dataclass
class BatchCounts:
    due: int = 0
    sent: int = 0
    failed: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    def counters(self) -> dict[str, int]:
        """Attribute name -> number, as added to the run summary item."""
        values = {"due": self.due, "sent": self.sent, "failed": self.failed}
        values.update({f"skipped_{reason}": count for reason, count in self.skipped.items()})
        return values

    def as_result(self) -> dict[str, Any]:
        return {"due": self.due, "sent": self.sent, "failed": self.failed, "skipped": dict(self.skipped)}


def summary_of(item: dict[str, Any]) -> dict[str, Any]:
    """The run summary from its item: due, sent, skipped by reason, failed."""
    skipped = {
        key.removeprefix("skipped_"): int(value)
        for key, value in sorted(item.items())
        if key.startswith("skipped_") and int(value)
    }
    return {
        "runId": item.get("run_id"),
        "runAt": item.get("run_at"),
        "status": item.get("status"),
        "due": int(item.get("due", 0)),
        "sent": int(item.get("sent", 0)),
        "failed": int(item.get("failed", 0)),
        "skipped": skipped,
        "skippedTotal": sum(skipped.values()),
        **({"error": item["run_error"]} if item.get("run_error") else {}),
    }


# --- events --------------------------------------------------------------------------------

EventId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
EmailText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=MAX_EMAIL_LENGTH)]


class _Detail(BaseModel):
    model_config = ConfigDict(extra="ignore")

    email: EmailText
    occurredAt: AwareDatetime


class PurchaseCompleted(_Detail):
    """``Source: shop``: the shop's contract (README, Events)."""

    orderId: EventId
    customerId: EventId | None = None

    @property
    def event_key(self) -> str:
        return self.orderId


class ServiceRequestClosed(_Detail):
    """``Source: customer-service``."""

    requestId: EventId

    @property
    def event_key(self) -> str:
        return self.requestId


TRIGGERS: dict[tuple[str, str], type[PurchaseCompleted] | type[ServiceRequestClosed]] = {
    ("shop", "PurchaseCompleted"): PurchaseCompleted,
    ("customer-service", "ServiceRequestClosed"): ServiceRequestClosed,
}


def _problems(error: ValidationError, prefix: str) -> list[str]:
    """Where and what, never the submitted value (it may be an address)."""
    return [
        f"{'.'.join([prefix, *(str(part) for part in problem['loc'])]).strip('.')}: {problem['msg']}"
        for problem in error.errors()
    ]


def parse_trigger(event: Any) -> tuple[str, PurchaseCompleted | ServiceRequestClosed]:
    """The detail type and the validated detail of an EventBridge event, or :class:`MalformedEvent`."""
    try:
        envelope = EventBridgeModel.model_validate(event)
    except ValidationError as error:
        raise MalformedEvent(_problems(error, "")) from None
    model = TRIGGERS.get((envelope.source, envelope.detail_type))
    if model is None:
        raise MalformedEvent([f"detail-type: {envelope.source}/{envelope.detail_type} does not trigger a review"])
    try:
        detail = model.model_validate(envelope.detail)
    except ValidationError as error:
        raise MalformedEvent(_problems(error, "detail")) from None
    return envelope.detail_type, detail


# --- adapters ------------------------------------------------------------------------------


class _CheckedByCaller:
    """The suppression list as the review step already read it (one BatchGetItem per batch, one
    lookup per event): a profile reaches the mailer only when its address was not on it."""

    def is_suppressed(self, address_hash: str) -> bool:
        return False


_CHECKED_BY_CALLER = _CheckedByCaller()


class _CollectedLedger:
    """Ledger port for the Mailer that keeps entries for the profile's own transaction."""

    def __init__(self) -> None:
        self.entries: list[LedgerEntry] = []

    def append(self, entry: LedgerEntry) -> None:
        self.entries.append(entry)


class DeadLetters:
    """Keeps events that can never be processed in an SQS queue, for a person to look at."""

    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def keep(self, event: Any, problems: list[str]) -> bool:
        if not self._queue_url:
            return False
        body = json.dumps({"problems": problems, "event": event}, default=str)
        try:
            self._client.send_message(QueueUrl=self._queue_url, MessageBody=body)
        except ClientError as error:
            raise TemporarilyUnavailable(error.response.get("Error", {}).get("Code", "")) from error
        return True


# --- the use cases -------------------------------------------------------------------------


@dataclass
class ReviewCampaigns:
    profiles: ProfileService
    runs: CampaignRunRepository
    ses: Any
    dead_letters: DeadLetters
    clock: Callable[[], dt.datetime] = field(default=partial(dt.datetime.now, dt.UTC))
    sleep: Callable[[float], None] = time.sleep

    @property
    def settings(self) -> Settings:
        return self.profiles.settings

    @property
    def catalog(self) -> Catalog:
        return self.profiles.catalog

    # --- periodic ---------------------------------------------------------------------------
    def plan_run(self, run_id: str, started_at: dt.datetime, run_at: dt.datetime | None = None) -> RunPlan:
        """The run's time (given, else the execution's start), its shards and its concurrency.

        Only one periodic run works at a time: two runs over the same due profiles could both
        mail a customer between reading and recording. A run started while another holds the
        claim is recorded as skipped and sends nothing.
        """
        shard_count = self.settings.review_shard_count
        concurrency = int(self.settings.ses_max_send_rate // SENDS_PER_SECOND_PER_WORKER)
        plan = RunPlan(
            run_id=run_id,
            run_at=run_at or started_at,
            shards=[review_shard_key(number) for number in range(shard_count)],
            max_concurrency=max(1, min(shard_count, concurrency)),
        )
        now = self.clock()
        self.runs.start(PERIODIC, run_id, plan.run_at, now)
        if not self.runs.claim(PERIODIC, run_id, now, RUN_TIMEOUT):
            item = self.runs.finish(
                PERIODIC, run_id, plan.run_at, now, "skipped", "another periodic run is still running"
            )
            logger.warning("review run skipped: another run is still running", extra={"run_id": run_id})
            return replace(plan, shards=[], skipped=summary_of(item))
        logger.info("review run planned", extra={"run_id": run_id, "shards": shard_count})
        return plan

    def select_page(
        self, shard: str, run_at: dt.datetime, cursor: dict[str, str] | None
    ) -> tuple[list[str], dict[str, str] | None]:
        """One batch of due profile ids of ``shard`` and the cursor of the next page."""
        return self.profiles.repository.due_for_review(shard, run_at, self.settings.review_batch_size, cursor)

    def review_batch(self, run_id: str, run_at: dt.datetime, profile_ids: list[str]) -> BatchCounts:
        """Check, send and record each profile; add the counts to the run summary at the end.

        :class:`TemporarilyUnavailable` (SES or DynamoDB throttling) ends the batch without
        counting it, so the state machine retries it whole; profiles this run has mailed
        already are recognised and counted as sent.
        """
        campaign = f"{PERIODIC}:{run_id}"
        counts = BatchCounts(due=len(profile_ids))
        repository = self.profiles.repository
        found = {profile.id: profile for profile in repository.get_many(profile_ids)}
        suppressed = repository.suppressed_among([address_hash(p.email) for p in found.values()])
        now = self.clock()
        for profile_id in profile_ids:
            profile = found.get(profile_id)
            if profile is None:
                counts.skipped[NOT_FOUND] += 1
                continue
            if profile.last_review_campaign == campaign:
                counts.sent += 1
                continue
            try:
                reason = self._review(profile, campaign, PERIODIC, now, address_hash(profile.email) in suppressed)
            except TemporarilyUnavailable:
                raise
            except Exception:
                logger.exception("review of a profile failed", extra={"profile_id": profile_id})
                counts.failed += 1
                continue
            if reason is None:
                counts.sent += 1
            else:
                counts.skipped[reason.value] += 1
        self.runs.add(PERIODIC, run_id, run_at, counts.counters())
        logger.info("review batch done", extra={"run_id": run_id, **counts.as_result()})
        return counts

    def count_failed_batch(self, run_id: str, run_at: dt.datetime, profile_ids: list[str]) -> BatchCounts:
        """A batch that failed for good: what it sent before failing counts as sent, the rest as failed."""
        campaign = f"{PERIODIC}:{run_id}"
        sent = {p.id for p in self.profiles.repository.get_many(profile_ids) if p.last_review_campaign == campaign}
        counts = BatchCounts(due=len(profile_ids), sent=len(sent), failed=len(profile_ids) - len(sent))
        self.runs.add(PERIODIC, run_id, run_at, counts.counters())
        logger.warning("review batch failed", extra={"run_id": run_id, **counts.as_result()})
        return counts

    def finish_run(self, run_id: str, run_at: dt.datetime, error: str | None = None) -> dict[str, Any]:
        now = self.clock()
        item = self.runs.finish(PERIODIC, run_id, run_at, now, "failed" if error else "finished", error)
        self.runs.release(PERIODIC, run_id, now)
        summary = summary_of(item)
        logger.info("review run finished", extra=summary)
        return summary

    # --- event-triggered --------------------------------------------------------------------
    def plan_event(self, event: Any) -> dict[str, Any]:
        """Validate the event and say until when to wait: occurredAt + delay, never in the past.

        A malformed event goes to the dead-letter queue and raises :class:`MalformedEvent`.
        """
        try:
            detail_type, detail = parse_trigger(event)
            email = checked_email(detail.email, field="detail.email")
            now = self.clock()
            if detail.occurredAt > now + _MAX_FUTURE:
                raise MalformedEvent(["detail.occurredAt: lies in the future"])
        except (MalformedEvent, InvalidInput) as error:
            problems = error.problems if isinstance(error, MalformedEvent) else [f"{error.field}: {error.message}"]
            kept = self.dead_letters.keep(event, problems)
            logger.warning("malformed review event", extra={"problems": problems, "dead_lettered": kept})
            raise MalformedEvent(problems) from None
        hours = self.settings.review_event_delay_hours
        delay = dt.timedelta(hours=self.catalog.review.event_delay_hours if hours is None else hours)
        wait_until = max(now, detail.occurredAt + delay)
        return {
            "detailType": detail_type,
            "eventKey": detail.event_key,
            "email": email,
            "occurredAt": timestamp(detail.occurredAt),
            "waitUntil": wait_until.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }

    def review_after_event(self, plan: dict[str, Any]) -> dict[str, Any]:
        """Re-read the profile of the event's address and run the check/send/record step.

        An unknown address ends quietly: an event never creates a profile.
        """
        trigger = str(plan["detailType"])
        campaign = f"event:{trigger}:{plan['eventKey']}"
        repository = self.profiles.repository
        profile = repository.find_by_email(str(plan["email"]))  # a consistent read after the index
        if profile is None:
            logger.info("review event for an unknown address", extra={"trigger": trigger})
            return {"outcome": "unknown_address"}
        if profile.last_review_campaign == campaign:
            return {"outcome": "sent", "profileId": profile.id}
        suppressed = bool(repository.suppressed_among([address_hash(profile.email)]))
        reason = self._review(profile, campaign, trigger, self.clock(), suppressed)
        if reason is not None:
            logger.info("review skipped", extra={"profile_id": profile.id, "reason": reason.value, "trigger": trigger})
            return {"outcome": "skipped", "reason": reason.value, "profileId": profile.id}
        return {"outcome": "sent", "profileId": profile.id}

    # --- the shared check/send/record step --------------------------------------------------
    def _review(
        self, profile: Profile, campaign: str, trigger: str, now: dt.datetime, address_suppressed: bool
    ) -> SkipReason | None:
        reason = review_email_skip_reason(profile, self.catalog, now, address_suppressed=address_suppressed)
        if reason is not None:
            if trigger == PERIODIC:
                self._tidy_index(profile, now, address_suppressed)
            return reason
        need = review_need(profile, self.catalog, now)
        ledger = _CollectedLedger()
        context = {
            "campaign": campaign,
            "trigger": trigger,
            "fields": ",".join(need.focus),
            "overdue": "true" if need.overdue else "false",
        }
        self._send(profile, need, ledger, now, context)
        self._record(profile, ledger.entries, now, campaign)
        logger.info("review requested", extra={"profile_id": profile.id, "trigger": trigger})
        return None

    def review_links(self, profile: Profile, need: ReviewNeed) -> dict[str, str]:
        """The link contract with the hosted pages: the focus fields first, or "everything is correct"."""
        manage = self.profiles.link(profile, Purpose.MANAGE, "/link")
        focus = ",".join(need.focus)
        return {
            "manage_link": f"{manage}&next=/profile%3Ffocus%3D{focus}" if focus else f"{manage}&next=/profile",
            "confirm_link": f"{manage}&next=/review",
            "settings_link": manage,
            "unsubscribe_url": self.profiles.link(profile, Purpose.UNSUBSCRIBE, "/unsubscribe/one-click"),
        }

    def _send(
        self, profile: Profile, need: ReviewNeed, ledger: _CollectedLedger, now: dt.datetime, context: dict[str, str]
    ) -> None:
        """Render and send the review email; the mailer records it as one "review requested" entry."""
        language = profile.locale
        labels = {spec.id: spec.label.get(language) for spec in self.catalog.fields}
        links = self.review_links(profile, need)
        email = self.profiles.renderer.render(
            "review_request",
            language,
            marketing=True,
            first_name=profile.value_of("first_name") or "",
            missing=[labels[field_id] for field_id in need.missing],
            stale=[labels[field_id] for field_id in need.stale],
            manage_link=links["manage_link"],
            confirm_link=links["confirm_link"],
            settings_link=links["settings_link"],
            unsubscribe_link=links["unsubscribe_url"],
            valid_days=LIFETIMES[Purpose.MANAGE].days,
            recipient=profile.email,
            company=self.settings.company_name,
        )
        settings = self.settings
        mailer = Mailer(
            self.ses,
            ledger,
            settings.sender_address,
            settings.ses_configuration_set,
            settings.stage,
            suppression=_CHECKED_BY_CALLER,
        )
        try:
            outcome = mailer.send(
                profile,
                email,
                Source.SYSTEM,
                unsubscribe_url=links["unsubscribe_url"],
                now=now,
                sent_as=LedgerKind.REVIEW_REQUESTED,
                context=context,
            )
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in _SES_THROTTLING or "Throttl" in code:
                raise TemporarilyUnavailable(f"SES {code}") from error
            raise
        if not outcome.sent:  # the check above covers the Mailer's own rule; kept as a guard
            raise DomainError(f"the mailer refused a review email: {outcome.skipped_reason}")

    def _record(self, profile: Profile, entries: list[LedgerEntry], now: dt.datetime, campaign: str) -> None:
        """Cooldown, frequency count and the ledger entries in one conditional write (re-read on conflict).

        The email is already out, so DynamoDB throttling is waited out here first: a batch handed
        back to the state machine would find this profile unrecorded and mail it again.
        """
        repository = self.profiles.repository
        current = profile
        conflicts = 0
        pauses = iter(_RECORD_PAUSES)
        while True:
            try:
                repository.save(record_review_email(current, now, campaign), current.version, entries)
                return
            except VersionConflict:
                conflicts += 1
                if conflicts == _RECORD_ATTEMPTS:
                    raise TemporarilyUnavailable(
                        "the profile kept changing while the review email was recorded"
                    ) from None
                try:
                    current = repository.get(profile.id)
                except NotFound:
                    return  # erased after the email went out; nothing left to record
            except TemporarilyUnavailable:
                pause = next(pauses, None)
                if pause is None:
                    raise
                logger.warning("recording a review email is throttled; waiting", extra={"profile_id": profile.id})
                self.sleep(pause)

    def _tidy_index(self, profile: Profile, now: dt.datetime, address_suppressed: bool) -> None:
        """A profile the periodic run skipped should not be offered again tomorrow.

        An address on the suppression list marks the profile suppressed (it leaves the index);
        an index entry that lags behind the profile (GSIs are eventually consistent; catalog
        changes do not rewrite profiles) is rewritten to the profile's real next review time.
        """
        repository = self.profiles.repository
        if address_suppressed and not profile.suppressed:
            updated, entry = mark_suppressed(profile, now, "address on the suppression list")
            with contextlib.suppress(VersionConflict):  # changed meanwhile: the next run sees it again
                repository.save(updated, profile.version, [entry])
            return
        due = next_review_at(profile, self.catalog)
        if due is None or due > now:
            repository.reindex(profile)


def build_campaigns(settings: Settings, **overrides: Any) -> ReviewCampaigns:
    """The composition root of the campaign steps; tests override single parts."""
    profiles = overrides.pop("profiles", None) or build_service(settings)
    parts: dict[str, Any] = {
        "profiles": profiles,
        "runs": CampaignRunRepository(settings.table_name, aws.client("dynamodb")),
        "ses": aws.client("sesv2"),
        "dead_letters": DeadLetters(aws.client("sqs"), settings.review_dead_letter_queue_url),
    }
    parts.update(overrides)
    return ReviewCampaigns(**parts)
