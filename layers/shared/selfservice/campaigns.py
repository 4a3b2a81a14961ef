"""Profile review campaigns: the use cases the review state machines call, step by step.

Periodic (``statemachines/periodic_review.asl.json``): :meth:`ReviewCampaigns.plan_run` fixes
the run time and the index shards, :meth:`~ReviewCampaigns.select_page` reads one page of due
profiles of a shard from the sparse ReviewDue index, :meth:`~ReviewCampaigns.review_batch`
checks, sends and records a page, and :meth:`~ReviewCampaigns.finish_run` closes the run
summary. Event-triggered (``statemachines/event_review.asl.json``):
:meth:`~ReviewCampaigns.plan_event` validates a shop or customer-service event and says until
when to wait, :meth:`~ReviewCampaigns.review_after_event` re-reads the profile and runs the same
check/send/record step.

At most one review email per customer per cooldown, however many executions look at the same
profile at once (several purchases, a periodic run overlapping an event review, retries): each
claims the profile first with a write conditional on the version it read (only one can win;
the others re-read it and find the cooldown), then sends, then puts the "review requested"
ledger entry under a key made of the campaign and the profile. A send that fails after the
claim gives the claim back, so the customer is asked another time.

Every step can be retried: a page adds its due profiles to the run summary when it is read, a
batch adds what it sent, skipped and failed when it is done, and a profile already claimed by
this run (``domain.review.claimed_by``) is counted, not mailed again. Whatever was selected
and never accounted for counts as failed when the run closes, so the summary never under-reports.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from botocore.exceptions import ClientError
from pydantic import AwareDatetime, BaseModel, ConfigDict, StringConstraints, ValidationError

from selfservice.catalog import Catalog
from selfservice.domain.changes import MAX_EMAIL_LENGTH, checked_email, mark_suppressed
from selfservice.domain.errors import DomainError, InvalidInput, NotFound, TemporarilyUnavailable, VersionConflict
from selfservice.domain.models import LedgerEntry, LedgerKind, Profile, Source, address_hash, profile_id_of_request
from selfservice.domain.review import (
    ReviewNeed,
    SkipReason,
    claim_review_email,
    claimed_by,
    next_review_at,
    release_review_claim,
    review_email_skip_reason,
    review_need,
)
from selfservice.settings import Settings
from selfservice.storage import CampaignRunRepository, review_shard_key
from selfservice.tokens import LIFETIMES, Purpose
from selfservice.usecases import requests
from selfservice.usecases.access import link
from selfservice.usecases.ports import Adapters

logger = Logger(child=True)

PERIODIC = "periodic"
CAMPAIGN_SHARE_OF_SES_RATE = 0.9
"""The periodic run sends at most this share of the account's SES rate: the rest stays free for
confirmation emails and event reviews, which must not queue behind a campaign."""
SEND_THREADS = 8
"""Profiles one sender invocation works on at once (each waits mostly on SES and DynamoDB)."""
SENDS_PER_SECOND_PER_WORKER = 50
"""What one sender invocation sustains with :data:`SEND_THREADS` threads (render, claim, SES,
ledger); more shards in flight are needed above it (ReviewShardCount >= rate / this)."""
PAGE_SECONDS = 120
"""A page holds at most what one invocation sends at its rate in this time (the sender's
timeout is 300 s), so a slow SES quota never runs a batch into the Lambda timeout."""
TOLERATED_FAILED_SHARE = 0.05
"""A run in which more of the due profiles failed ends as failed (the execution fails, an alarm fires)."""
_CLAIM_ATTEMPTS = 3
_SES_THROTTLING = {"TooManyRequestsException", "Throttling", "ThrottlingException"}
_MAX_FUTURE = dt.timedelta(days=1)
"""How far in the future an event's occurredAt may lie (clock skew), before it counts as malformed."""
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
class RunShape:
    """How a periodic run keeps SES busy without exceeding its rate."""

    workers: int
    """Shards in flight at once (the Distributed Map's MaxConcurrency)."""
    send_rate: float
    """Emails per second each worker sends at most."""
    page_size: int
    """Due profiles per sender invocation."""

    @classmethod
    def for_rate(cls, ses_max_send_rate: float, shard_count: int, batch_size: int) -> RunShape:
        """Workers follow the SES rate (capped by the shards), pages fit the sender's time budget."""
        campaign_rate = ses_max_send_rate * CAMPAIGN_SHARE_OF_SES_RATE
        workers = max(1, min(shard_count, math.ceil(campaign_rate / SENDS_PER_SECOND_PER_WORKER)))
        send_rate = campaign_rate / workers
        page_size = max(1, min(batch_size, int(send_rate * PAGE_SECONDS)))
        return cls(workers=workers, send_rate=send_rate, page_size=page_size)


@dataclass(frozen=True)
class RunPlan:
    run_id: str
    run_at: dt.datetime
    shards: list[str]
    shape: RunShape
    skipped: dict[str, Any] | None = None
    """The run's summary when it did not start because another run still holds the claim."""

    def as_state(self) -> dict[str, Any]:
        return {
            "runId": self.run_id,
            "runAt": timestamp(self.run_at),
            "shards": self.shards,
            "maxConcurrency": self.shape.workers,
            "sendRate": round(self.shape.send_rate, 3),
            "pageSize": self.shape.page_size,
        }


class SendPacer:
    """Spaces the emails of one sender invocation to its rate; shared by its threads."""

    def __init__(
        self,
        rate: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._interval = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_slot: float | None = None

    def wait(self) -> None:
        """Return when the next email may go out (at once, if the rate allows)."""
        with self._lock:
            now = self._clock()
            slot = now if self._next_slot is None else max(now, self._next_slot)
            self._next_slot = slot + self._interval
        if slot > now:
            self._sleep(slot - now)


def review_entry_id(campaign: str, profile_id: str) -> str:
    """The id of the "review requested" entry of one campaign and profile: writing it twice writes it once."""
    return hashlib.sha256(f"{campaign}|{profile_id}".encode()).hexdigest()[:32]


@dataclass
class BatchCounts:
    due: int = 0
    sent: int = 0
    failed: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    def counters(self) -> dict[str, int]:
        """Attribute name -> number, as added to the run summary item (due is counted when a page is read)."""
        values = {"sent": self.sent, "failed": self.failed}
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


class RequestClosedEvent(BaseModel):
    """``Source: self-service``: a request closed through this product's API (README, Events).

    Carries the profile id, not the address; it starts the same review as ``ServiceRequestClosed``.
    """

    model_config = ConfigDict(extra="ignore")

    requestId: EventId
    profileId: EventId
    occurredAt: AwareDatetime

    @property
    def event_key(self) -> str:
        return self.requestId


Trigger = PurchaseCompleted | ServiceRequestClosed | RequestClosedEvent
TRIGGERS: dict[tuple[str, str], type[Trigger]] = {
    ("shop", "PurchaseCompleted"): PurchaseCompleted,
    ("customer-service", "ServiceRequestClosed"): ServiceRequestClosed,
    ("self-service", "RequestClosed"): RequestClosedEvent,
}
# A request closed here and the same request closed by an outside service system are one review.
SAME_REVIEW = {"RequestClosed": "ServiceRequestClosed"}


def _problems(error: ValidationError, prefix: str) -> list[str]:
    """Where and what, never the submitted value (it may be an address)."""
    return [
        f"{'.'.join([prefix, *(str(part) for part in problem['loc'])]).strip('.')}: {problem['msg']}"
        for problem in error.errors()
    ]


def parse_trigger(event: Any) -> tuple[str, Trigger]:
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
    profiles: Adapters
    runs: CampaignRunRepository
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
        """The run's time (given, else the execution's start), its shards and its shape.

        Only one periodic run works at a time: a run started while another holds the claim is
        recorded as skipped and sends nothing (the profile claims would keep two runs from
        mailing anyone twice, but two runs would split one SES rate between them).
        """
        settings = self.settings
        shard_count = settings.review_shard_count
        shape = RunShape.for_rate(settings.ses_max_send_rate, shard_count, settings.review_batch_size)
        plan = RunPlan(
            run_id=run_id,
            run_at=run_at or started_at,
            shards=[review_shard_key(number) for number in range(shard_count)],
            shape=shape,
        )
        now = self.clock()
        self.runs.start(PERIODIC, run_id, plan.run_at, now)
        if not self.runs.claim(PERIODIC, run_id, now, RUN_TIMEOUT):
            item = self.runs.finish(
                PERIODIC, run_id, plan.run_at, now, "skipped", "another periodic run is still running"
            )
            logger.warning("review run skipped: another run is still running", extra={"run_id": run_id})
            return replace(plan, shards=[], skipped=summary_of(item))
        if shape.send_rate > SENDS_PER_SECOND_PER_WORKER:
            logger.warning(
                "more SES rate than the shards can use; raise ReviewShardCount",
                extra={"shards": shard_count, "rate_per_worker": shape.send_rate},
            )
        logger.info("review run planned", extra={"run_id": run_id, **plan.as_state(), "shards": shard_count})
        return plan

    def select_page(
        self, run_id: str, shard: str, run_at: dt.datetime, page_size: int, cursor: dict[str, str] | None
    ) -> tuple[list[str], dict[str, str] | None]:
        """One page of due profile ids of ``shard`` and the cursor of the next page.

        The page's profiles are counted as due right away: whatever the run does not account
        for later (a batch that failed without a trace) then shows as failed.
        """
        size = min(page_size, self.settings.review_batch_size)
        ids, next_cursor = self.profiles.repository.due_for_review(shard, run_at, size, cursor)
        self.runs.add(PERIODIC, run_id, run_at, {"due": len(ids)})
        return ids, next_cursor

    def review_batch(
        self, run_id: str, run_at: dt.datetime, profile_ids: list[str], send_rate: float | None = None
    ) -> BatchCounts:
        """Check, claim, send and record each profile, :data:`SEND_THREADS` at a time, at most
        ``send_rate`` emails per second; add the counts to the run summary at the end.

        :class:`TemporarilyUnavailable` (SES or DynamoDB throttling) stops the batch without
        counting it, so the state machine retries it whole; profiles this run has claimed
        already are recognised and counted as sent.
        """
        campaign = f"{PERIODIC}:{run_id}"
        counts = BatchCounts(due=len(profile_ids))
        repository = self.profiles.repository
        found = {profile.id: profile for profile in repository.get_many(profile_ids)}
        suppressed = repository.suppressed_among([address_hash(p.email) for p in found.values()])
        now = self.clock()
        rate = send_rate or self.settings.ses_max_send_rate * CAMPAIGN_SHARE_OF_SES_RATE
        pacer = SendPacer(rate, sleep=self.sleep)
        stopped = threading.Event()
        if found:
            # What the threads share is made here, once: the link-signing secrets (the SSM client
            # behind them is created on first use, and creating boto3 clients is not thread-safe),
            # and the lazily imported rendering and MIME modules.
            self.profiles.signer()
            self.profiles.renderer.prepare()

        def review_one(profile_id: str) -> str:
            """ "sent", "failed" or the skip reason of one profile."""
            profile = found.get(profile_id)
            if profile is None:
                return SkipReason.NOT_FOUND.value
            if claimed_by(profile, campaign):
                return "sent"
            if stopped.is_set():
                raise TemporarilyUnavailable("the batch stopped")
            try:
                suppressed_now = address_hash(profile.email) in suppressed
                reason = self._review(profile, campaign, PERIODIC, now, suppressed_now, pacer)
            except TemporarilyUnavailable:
                stopped.set()
                raise
            except Exception:
                logger.exception("review of a profile failed", extra={"profile_id": profile_id})
                return "failed"
            return "sent" if reason is None else reason.value

        with ThreadPoolExecutor(max_workers=SEND_THREADS, thread_name_prefix="review") as pool:
            outcomes = [pool.submit(review_one, profile_id) for profile_id in profile_ids]
        for outcome in outcomes:
            result = outcome.result()  # re-raises TemporarilyUnavailable: the batch is retried
            if result == "sent":
                counts.sent += 1
            elif result == "failed":
                counts.failed += 1
            else:
                counts.skipped[result] += 1
        self.runs.add(PERIODIC, run_id, run_at, counts.counters())
        logger.info("review batch done", extra={"run_id": run_id, **counts.as_result()})
        return counts

    def count_failed_batch(self, run_id: str, run_at: dt.datetime, profile_ids: list[str]) -> BatchCounts:
        """A batch that failed for good: what it claimed before failing counts as sent, the rest as failed."""
        campaign = f"{PERIODIC}:{run_id}"
        sent = {p.id for p in self.profiles.repository.get_many(profile_ids) if claimed_by(p, campaign)}
        counts = BatchCounts(due=len(profile_ids), sent=len(sent), failed=len(profile_ids) - len(sent))
        self.runs.add(PERIODIC, run_id, run_at, counts.counters())
        logger.warning("review batch failed", extra={"run_id": run_id, **counts.as_result()})
        return counts

    def finish_run(self, run_id: str, run_at: dt.datetime, error: str | None = None) -> dict[str, Any]:
        """Close the run: what was selected but never accounted for counts as failed, and a run
        with more failures than :data:`TOLERATED_FAILED_SHARE` (or a failed Map) is failed."""
        now = self.clock()
        counted = summary_of(self.runs.get(PERIODIC, run_id, run_at))
        unaccounted = counted["due"] - counted["sent"] - counted["failed"] - counted["skippedTotal"]
        if unaccounted > 0:
            self.runs.add(PERIODIC, run_id, run_at, {"failed": unaccounted})
        failed = counted["failed"] + max(0, unaccounted)
        if error is None and failed > counted["due"] * TOLERATED_FAILED_SHARE:
            error = f"{failed} of {counted['due']} due profiles failed (tolerated: {TOLERATED_FAILED_SHARE:.0%})"
        item = self.runs.finish(PERIODIC, run_id, run_at, now, "failed" if error else "finished", error)
        self.runs.release(PERIODIC, run_id, now)
        summary = summary_of(item)
        log = logger.error if error else logger.info
        log("review run finished", extra=summary)
        return summary

    # --- event-triggered --------------------------------------------------------------------
    def plan_event(self, event: Any) -> dict[str, Any]:
        """Validate the event and say until when to wait: occurredAt + delay, never in the past.

        A malformed event goes to the dead-letter queue and raises :class:`MalformedEvent`.
        """
        try:
            detail_type, detail = parse_trigger(event)
            email = None
            if not isinstance(detail, RequestClosedEvent):  # that one names the profile, not the address
                email = checked_email(detail.email, field="detail.email")
            now = self.clock()
            if detail.occurredAt > now + _MAX_FUTURE:
                raise MalformedEvent(["detail.occurredAt: lies in the future"])
        except (MalformedEvent, InvalidInput) as error:
            problems = error.problems if isinstance(error, MalformedEvent) else [f"{error.field}: {error.message}"]
            kept = self.dead_letters.keep(event, problems)
            logger.warning("malformed review event", extra={"problems": problems, "dead_lettered": kept})
            raise MalformedEvent(problems) from None
        if isinstance(detail, ServiceRequestClosed) and profile_id_of_request(detail.requestId):
            # The outside system's closing closes the request stored here too (when it is one of ours).
            requests.close_from_event(self.profiles, detail.requestId)
        hours = self.settings.review_event_delay_hours
        delay = dt.timedelta(hours=self.catalog.review.event_delay_hours if hours is None else hours)
        wait_until = max(now, detail.occurredAt + delay)
        target = {"profileId": detail.profileId} if isinstance(detail, RequestClosedEvent) else {"email": email}
        return {
            "detailType": SAME_REVIEW.get(detail_type, detail_type),
            "eventKey": detail.event_key,
            **target,
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
        if plan.get("profileId"):
            try:
                profile: Profile | None = repository.get(str(plan["profileId"]))
            except NotFound:
                profile = None
        else:
            profile = repository.find_by_email(str(plan["email"]))  # a consistent read after the index
        if profile is None:
            logger.info("review event for an unknown address", extra={"trigger": trigger})
            return {"outcome": "unknown_address"}
        if claimed_by(profile, campaign):
            return {"outcome": "sent", "profileId": profile.id}
        suppressed = bool(repository.suppressed_among([address_hash(profile.email)]))
        reason = self._review(profile, campaign, trigger, self.clock(), suppressed)
        if reason is not None:
            logger.info("review skipped", extra={"profile_id": profile.id, "reason": reason.value, "trigger": trigger})
            return {"outcome": "skipped", "reason": reason.value, "profileId": profile.id}
        return {"outcome": "sent", "profileId": profile.id}

    # --- the shared check/claim/send/record step --------------------------------------------
    def _review(
        self,
        profile: Profile,
        campaign: str,
        trigger: str,
        now: dt.datetime,
        address_suppressed: bool,
        pacer: SendPacer | None = None,
    ) -> SkipReason | None:
        """Check, claim, send, record. None when the email went out, else why not."""
        claimed = self._claim(profile, campaign, trigger, now, address_suppressed)
        if isinstance(claimed, SkipReason):
            return claimed
        before, after = claimed
        need = review_need(before, self.catalog, now)
        context = {
            "campaign": campaign,
            "trigger": trigger,
            "fields": ",".join(need.focus),
            "overdue": "true" if need.overdue else "false",
        }
        if pacer is not None:
            pacer.wait()
        try:
            entry = self._send(before, need, now, context)
        except BaseException:
            self._release(after, before)
            raise
        self._record(entry.model_copy(update={"id": review_entry_id(campaign, profile.id)}))
        logger.info("review requested", extra={"profile_id": profile.id, "trigger": trigger})
        return None

    def _claim(
        self, profile: Profile, campaign: str, trigger: str, now: dt.datetime, address_suppressed: bool
    ) -> SkipReason | tuple[Profile, Profile]:
        """Win the right to send this review email, or say why not.

        The claim is the profile with the cooldown started, written only if nobody wrote the
        profile since it was read. Losing means another execution (or the customer) came first:
        the profile is read again and checked again, which finds the other's cooldown.
        Returns the profile as checked and as claimed.
        """
        repository = self.profiles.repository
        current = profile
        for _attempt in range(_CLAIM_ATTEMPTS):
            reason = review_email_skip_reason(current, self.catalog, now, address_suppressed=address_suppressed)
            if reason is not None:
                if trigger == PERIODIC:
                    self._tidy_index(current, now, address_suppressed)
                return reason
            claimed = claim_review_email(current, now, campaign)
            if repository.replace_if_version(claimed, current.version):
                return current, claimed
            try:
                current = repository.get(profile.id)
            except NotFound:
                return SkipReason.NOT_FOUND
        raise TemporarilyUnavailable("the profile kept changing while its review email was claimed")

    def _release(self, claimed: Profile, before_claim: Profile) -> None:
        """Give a claim back after the email could not be sent, so the customer is asked another
        time. If even that fails, the claim lapses with the cooldown (logged)."""
        repository = self.profiles.repository
        current = claimed
        try:
            for _attempt in range(_CLAIM_ATTEMPTS):
                if current.last_review_campaign != claimed.last_review_campaign:
                    return  # someone else's claim by now
                if repository.replace_if_version(release_review_claim(current, before_claim), current.version):
                    return
                current = repository.get(claimed.id)
        except NotFound:
            return
        except Exception:
            logger.exception("a review claim could not be given back", extra={"profile_id": claimed.id})
            return
        logger.warning("a review claim could not be given back; it lapses", extra={"profile_id": claimed.id})

    def review_links(self, profile: Profile, need: ReviewNeed) -> dict[str, str]:
        """The link contract with the hosted pages: the focus fields first, or "everything is correct"."""
        manage = link(self.profiles, profile, Purpose.MANAGE, "/link")
        focus = ",".join(need.focus)
        return {
            "manage_link": f"{manage}&next=/profile%3Ffocus%3D{focus}" if focus else f"{manage}&next=/profile",
            "confirm_link": f"{manage}&next=/review",
            "settings_link": manage,
            "unsubscribe_url": link(self.profiles, profile, Purpose.UNSUBSCRIBE, "/unsubscribe/one-click"),
        }

    def _send(self, profile: Profile, need: ReviewNeed, now: dt.datetime, context: dict[str, str]) -> LedgerEntry:
        """Render and send the review email; returns its "review requested" ledger entry (not yet written)."""
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
        try:
            message_id = self.profiles.mailer.send_claimed(profile, email, links["unsubscribe_url"])
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in _SES_THROTTLING or "Throttl" in code:
                raise TemporarilyUnavailable(f"SES {code}") from error
            raise
        detail = {**context, "email_type": email.email_type, "subject": email.subject, "message_id": message_id}
        return LedgerEntry(
            profile_id=profile.id, at=now, kind=LedgerKind.REVIEW_REQUESTED, source=Source.SYSTEM, detail=detail
        )

    def _record(self, entry: LedgerEntry) -> None:
        """Put the "review requested" entry; its key is fixed by campaign and profile, so a repeat is harmless.

        The email is out and the claim holds, so nothing here may hand the batch back to be sent
        again: DynamoDB throttling is waited out, and an entry that still cannot be written is
        logged (the customer's history then lacks it; the cooldown holds).
        """
        pauses: Iterator[float] = iter(_RECORD_PAUSES)
        while True:
            try:
                self.profiles.repository.append(entry)
                return
            except TemporarilyUnavailable:
                pause = next(pauses, None)
                if pause is None:
                    logger.error("a sent review email could not be recorded", extra={"profile_id": entry.profile_id})
                    return
                logger.warning("recording a review email is throttled; waiting", extra={"profile_id": entry.profile_id})
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
