"""Benchmark of the periodic profile review: what the selection reads, and what a review costs.

Two tables are built on moto from template.yaml at the template's default parameters: 2,000
subscribers with 200 due for a review, then 20,000 with 2,000 due (the baseline and ten times
it, measured in the same run). The real ``periodic_review`` state machine runs with the real
handlers (the local stack's in-process Lambda routing); only the SES rate is raised locally so
the sender's pacing does not dominate the wall time (the AWS run time is modelled from the
rate instead). Each run is measured from the outside:

* every DynamoDB call of every client (handlers and the state machine interpreter) through a
  botocore hook: the profile items and index entries each read returns, scans, and the request
  units each call consumes, computed from item sizes with DynamoDB's rounding rules (moto does
  not meter capacity), including the writes to the two global secondary indexes;
* every state the interpreter enters (a state transition, as Step Functions bills them);
* every Lambda invocation and its duration in-process.

Printed per run: the profile items read by the selection against the due count (goal <= 1.1 x
due: the sparse index, no scan), state transitions, Lambda invocations, DynamoDB request units,
local wall time, the modelled AWS run time at 14 and at 500 emails per second, and a cost model
in $ per 1,000,000 profiles reviewed for Step Functions + Lambda + DynamoDB, next to SES's $100
per million emails (goal: <= 5 %). Then how each figure grows from the small run to the large.

Run with the shared layer on the import path: ``PYTHONPATH=layers/shared:. python bench/bench_review.py``
(``make bench`` does this).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import sys
import time
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

from devstack import patches
from devstack.cfn import Template
from devstack.config import AwsClients, default_env_overrides
from devstack.provision import Provisioner, StackResources
from devstack.runtime import LambdaRuntime
from selfservice import aws, bootstrap
from selfservice.campaigns import CAMPAIGN_SHARE_OF_SES_RATE, SENDS_PER_SECOND_PER_WORKER, RunShape
from selfservice.catalog import cached_catalog
from selfservice.domain.models import FieldValue, Preferences, Profile, SubscriptionStatus
from selfservice.domain.review import next_review_at
from selfservice.settings import get_settings
from selfservice.storage import ProfileRepository

REPOSITORY = Path(__file__).resolve().parents[1]
TEMPLATE_PATH = REPOSITORY / "template.yaml"
REGION = "eu-central-1"
SIZES = ((2_000, 200), (20_000, 2_000))
"""(profiles, due): the baseline and ten times it."""
LOCAL_SES_RATE = "100000"
"""The SES rate the local runs are given: pacing is not measured here but modelled (AWS_RATES)."""
AWS_RATES = (14, 500)
"""Emails per second of a new production SES account and of a large one, for the modelled run time."""
PAGE_OVERHEAD_SECONDS = 0.5
"""Modelled time per page on AWS besides sending: the page query, two Lambda invocations and the
state transitions around them (each tens of milliseconds)."""
SCALE = 1_000_000
MOTO_CONFIG: Any = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
BENCH_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}

# --- public list prices, Europe (Frankfurt) / eu-central-1, on-demand, without free tiers --------
# Step Functions Standard workflows: $0.025 per 1,000 state transitions.
#   https://aws.amazon.com/step-functions/pricing/ (state transitions pricing table), as of 2025.
SFN_PER_TRANSITION = 0.025 / 1_000
# Lambda, Arm (Graviton2) architecture as in the template: $0.20 per 1M requests and
# $0.0000133334 per GB-second (first tier). https://aws.amazon.com/lambda/pricing/, as of 2025.
LAMBDA_PER_REQUEST = 0.20 / 1_000_000
LAMBDA_PER_GB_SECOND = 0.0000133334
# DynamoDB on-demand, Standard table class: $0.7625 per 1M write request units and $0.1525 per 1M
# read request units (after the 50 % on-demand price reduction of 1 November 2024).
#   https://aws.amazon.com/dynamodb/pricing/on-demand/, as of 2025.
DYNAMODB_PER_WRU = 0.7625 / 1_000_000
DYNAMODB_PER_RRU = 0.1525 / 1_000_000
# SES outbound email: $0.10 per 1,000 emails. https://aws.amazon.com/ses/pricing/, as of 2025.
SES_PER_EMAIL = 0.10 / 1_000
# Not measurable on moto: the time one SES v2 SendEmail call takes from a Lambda function in the
# same region (moto answers in microseconds). An assumption, added to the sender's billed duration.
SES_CALL_SECONDS = 0.05
GOAL_READ_RATIO = 1.1
GOAL_SHARE_OF_SES = 0.05


# --- DynamoDB metering --------------------------------------------------------------------------


def _value_size(value: dict[str, Any]) -> int:
    """Approximate DynamoDB size of one typed attribute value (bytes)."""
    ((kind, content),) = value.items()
    if kind == "S":
        return len(str(content).encode())
    if kind == "N":
        return len(str(content).lstrip("-").replace(".", "")) // 2 + 1
    if kind == "B":
        return len(content)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "NS", "BS"):
        return sum(_value_size({kind[0]: element}) for element in content)
    if kind == "L":
        return 3 + sum(1 + _value_size(element) for element in content)
    if kind == "M":
        return 3 + sum(1 + len(name.encode()) + _value_size(element) for name, element in content.items())
    return 0


def item_size(item: dict[str, Any] | None) -> int:
    return sum(len(name.encode()) + _value_size(value) for name, value in (item or {}).items())


def read_units(size: int, consistent: bool) -> float:
    units = max(1, math.ceil(size / 4096))
    return float(units) if consistent else units / 2


def write_units(size: int) -> int:
    return max(1, math.ceil(size / 1024))


@dataclass(frozen=True)
class Index:
    name: str
    keys: tuple[str, ...]
    projection: str


@dataclass
class DynamoMeter:
    """Counts reads, scans and request units of every DynamoDB call made through boto3."""

    table: Any
    """moto's table object: the item images before and after each write."""
    indexes: list[Index]
    key_names: tuple[str, ...]
    calls: Counter[str] = field(default_factory=Counter)
    rru: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    wru: Counter[str] = field(default_factory=Counter)
    profile_items_read: int = 0
    index_entries_read: Counter[str] = field(default_factory=Counter)
    scans: int = 0

    def _image(self, key: dict[str, Any]) -> dict[str, Any] | None:
        from moto.dynamodb.models.dynamo_type import DynamoType

        hash_name, range_name = self.key_names
        item = self.table.get_item(DynamoType(key[hash_name]), DynamoType(key[range_name]))
        return item.to_json()["Attributes"] if item is not None else None

    def _keys_of_write(self, operation: str, params: dict[str, Any]) -> list[tuple[str, dict[str, Any], bool]]:
        """(operation, key, transactional) of every item a write request touches."""
        hash_name, range_name = self.key_names
        pick = {hash_name, range_name}
        if operation in ("PutItem", "UpdateItem", "DeleteItem"):
            source = params.get("Item") or params.get("Key") or {}
            return [(operation, {k: v for k, v in source.items() if k in pick}, False)]
        if operation == "TransactWriteItems":
            found = []
            for entry in params.get("TransactItems", []):
                ((kind, body),) = entry.items()
                source = body.get("Item") or body.get("Key") or {}
                found.append((kind, {k: v for k, v in source.items() if k in pick}, True))
            return found
        if operation == "BatchWriteItem":
            found = []
            for requests in params.get("RequestItems", {}).values():
                for request in requests:
                    ((kind, body),) = request.items()
                    source = body.get("Item") or body.get("Key") or {}
                    found.append((kind, {k: v for k, v in source.items() if k in pick}, False))
            return found
        return []

    def before(self, operation: str, params: dict[str, Any], context: dict[str, Any]) -> None:
        writes = self._keys_of_write(operation, params)
        context["bench_writes"] = [(kind, key, tx, self._image(key)) for kind, key, tx in writes]

    def _index_writes(self, before: dict[str, Any] | None, after: dict[str, Any] | None) -> int:
        units = 0
        for index in self.indexes:
            old_in = before is not None and all(k in before for k in index.keys)
            new_in = after is not None and all(k in after for k in index.keys)

            def projected(image: dict[str, Any], index: Index = index) -> int:
                if index.projection == "ALL":
                    return item_size(image)
                wanted = set(index.keys) | set(self.key_names)
                return item_size({k: v for k, v in image.items() if k in wanted})

            if old_in and new_in and before is not None and after is not None:
                key_changed = any(before[k] != after[k] for k in index.keys)
                if key_changed:
                    units += write_units(projected(before)) + write_units(projected(after))
                elif projected(before) != projected(after) or (index.projection == "ALL" and before != after):
                    units += write_units(max(projected(before), projected(after)))
            elif old_in and before is not None:
                units += write_units(projected(before))
            elif new_in and after is not None:
                units += write_units(projected(after))
        return units

    def after(self, operation: str, params: dict[str, Any], parsed: dict[str, Any], context: dict[str, Any]) -> None:
        if "Error" in parsed:
            return
        self.calls[operation] += 1
        label = operation
        if operation == "Query":
            label = f"Query {params.get('IndexName') or 'table'}"
            items = parsed.get("Items", [])
            consistent = bool(params.get("ConsistentRead"))
            self.rru[label] += read_units(sum(item_size(i) for i in items), consistent)
            if params.get("IndexName"):  # index entries, not profile items (ReviewDue projects keys only)
                self.index_entries_read[params["IndexName"]] += len(items)
            else:
                self.profile_items_read += sum(1 for i in items if i.get("sk", {}).get("S") == "PROFILE")
        elif operation == "Scan":
            self.scans += 1
            items = parsed.get("Items", [])
            self.rru[label] += read_units(sum(item_size(i) for i in items), bool(params.get("ConsistentRead")))
            self.profile_items_read += sum(1 for i in items if i.get("sk", {}).get("S") == "PROFILE")
        elif operation == "GetItem":
            item = parsed.get("Item")
            self.rru[label] += read_units(item_size(item), bool(params.get("ConsistentRead")))
            self.profile_items_read += 1 if item and item.get("sk", {}).get("S") == "PROFILE" else 0
        elif operation == "BatchGetItem":
            for table_name, request in params.get("RequestItems", {}).items():
                returned = parsed.get("Responses", {}).get(table_name, [])
                consistent = bool(request.get("ConsistentRead"))
                sizes = [item_size(i) for i in returned]
                missing = len(request.get("Keys", [])) - len(returned)
                self.rru[label] += sum(read_units(s, consistent) for s in sizes) + missing * read_units(0, consistent)
                self.profile_items_read += sum(1 for i in returned if i.get("sk", {}).get("S") == "PROFILE")
        for kind, key, transactional, before in context.get("bench_writes", []):
            if kind == "ConditionCheck":
                self.wru[label] += 2 * write_units(item_size(before))
                continue
            after = self._image(key)
            factor = 2 if transactional else 1
            self.wru[label] += factor * write_units(max(item_size(before), item_size(after)))
            self.wru[f"{label} (indexes)"] += self._index_writes(before, after)


def install_meter(meter: DynamoMeter) -> None:
    """Hook every boto3 client created from now on (handlers and the state machine interpreter)."""
    boto3.setup_default_session()
    events = boto3.DEFAULT_SESSION.events

    def provide(params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        context["bench_params"] = dict(params)

    def before(model: Any, context: dict[str, Any], **_: Any) -> None:
        meter.before(model.name, context.get("bench_params", {}), context)

    def after(parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        meter.after(model.name, context.get("bench_params", {}), parsed, context)

    events.register("provide-client-params.dynamodb", provide)
    events.register("before-call.dynamodb", before)
    events.register("after-call.dynamodb", after)


# --- state transitions and Lambda invocations ----------------------------------------------------


@contextmanager
def counting_transitions(counts: Counter[str]) -> Iterator[None]:
    """Every state the interpreter enters counts as one transition (Step Functions' billing unit)."""
    from moto.stepfunctions.parser.asl.component.state.state import CommonStateField

    original = CommonStateField._eval_body

    def eval_body(self: Any, env: Any) -> None:
        counts[self.name] += 1
        original(self, env)

    CommonStateField._eval_body = eval_body  # type: ignore[method-assign]
    try:
        yield
    finally:
        CommonStateField._eval_body = original  # type: ignore[method-assign]


@dataclass
class Invocation:
    function: str
    step: str
    seconds: float
    memory_mb: int
    result: Any


class RecordingRuntime(LambdaRuntime):
    """The local stack's Lambda runtime, timing every invocation."""

    def __init__(self, resources: StackResources) -> None:
        super().__init__(resources)
        self.invocations: list[Invocation] = []

    def invoke(self, spec: Any, payload: bytes | str | None) -> Any:
        started = time.perf_counter()
        result = super().invoke(spec, payload)
        event = json.loads(payload) if payload else {}
        self.invocations.append(
            Invocation(
                spec.logical_id, str(event.get("step", "")), time.perf_counter() - started, spec.memory_mb, result
            )
        )
        return result


# --- the run ---------------------------------------------------------------------------------------


def make_profiles(now: dt.datetime, count: int, due_count: int) -> list[Profile]:
    profiles = []
    for number in range(count):
        due = number % (count // due_count) == 0
        confirmed = now - dt.timedelta(days=20)
        profiles.append(
            Profile(
                id=f"{number:032x}",
                email=f"customer{number}@example.com",
                locale="de" if number % 3 else "en",
                status=SubscriptionStatus.SUBSCRIBED,
                consent_version="2026-01",
                fields={
                    "salutation": FieldValue(value="ms", confirmed_at=confirmed),
                    "first_name": FieldValue(value=f"Kundin {number}", confirmed_at=confirmed),
                    "last_name": FieldValue(value="Beispiel", confirmed_at=confirmed),
                    "street": FieldValue(value="Lindenstraße 5", confirmed_at=confirmed),
                    "postal_code": FieldValue(value="10969", confirmed_at=confirmed),
                    "city": FieldValue(value="Berlin", confirmed_at=confirmed),
                    "interests": FieldValue(value=["cooking", "garden"], confirmed_at=confirmed),
                },
                preferences=Preferences(topics={"offers": True, "news": True}, frequency="weekly"),
                created_at=now - dt.timedelta(days=500),
                updated_at=confirmed,
                last_reviewed_at=now - dt.timedelta(days=200 if due else 30),
            )
        )
    return profiles


def write_profiles(table: str, profiles: list[Profile]) -> None:
    settings = get_settings()
    catalog = settings.catalog
    client = aws.client("dynamodb")
    repository = ProfileRepository(table, client, lambda p: next_review_at(p, catalog), settings.review_shard_count)
    items = [repository._profile_item(profile) for profile in profiles]
    for start in range(0, len(items), 25):
        pending: dict[str, Any] = {table: [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]}
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}


@dataclass
class Run:
    profiles: int
    output: dict[str, Any]
    transitions: Counter[str]
    invocations: list[Invocation]
    meter: DynamoMeter
    emails: int
    shards: int
    batch_size: int
    seconds: float
    workers_at: dict[int, int] = field(default_factory=dict)
    """Shards in flight the run would use at each of AWS_RATES."""


def run_periodic_review(profiles: int, due: int) -> Run:
    saved = dict(os.environ)
    os.environ.update(BENCH_ENVIRONMENT)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    try:
        with mock_aws(config=MOTO_CONFIG):
            provisioner = Provisioner(
                Template.load(TEMPLATE_PATH), AwsClients(None), env_overrides=default_env_overrides("127.0.0.1", 3000)
            )
            resources = provisioner.provision_all()
            os.environ.update(resources.common_environment)
            get_settings.cache_clear()
            cached_catalog.cache_clear()
            bootstrap.reset()
            table_name = str(resources.refs["ProfileTable"])
            description = AwsClients(None)("dynamodb").describe_table(TableName=table_name)["Table"]
            indexes = [
                Index(
                    i["IndexName"], tuple(k["AttributeName"] for k in i["KeySchema"]), i["Projection"]["ProjectionType"]
                )
                for i in description["GlobalSecondaryIndexes"]
            ]
            key_names = tuple(k["AttributeName"] for k in description["KeySchema"])
            from moto.dynamodb.models import dynamodb_backends

            moto_table = dynamodb_backends[provisioner.clients.account_id][REGION].get_table(table_name)
            write_profiles(table_name, make_profiles(dt.datetime.now(dt.UTC), profiles, due))

            meter = DynamoMeter(moto_table, indexes, key_names)
            install_meter(meter)
            bootstrap.reset()
            runtime = RecordingRuntime(resources)
            runtime.env.install_common({**resources.common_environment, "SES_MAX_SEND_RATE": LOCAL_SES_RATE})
            get_settings.cache_clear()
            patches.install(runtime)
            transitions: Counter[str] = Counter()
            try:
                with counting_transitions(transitions):
                    started = time.perf_counter()
                    output = _execute(resources.state_machines["PeriodicReviewStateMachine"].arn)
                    seconds = time.perf_counter() - started
            finally:
                patches.uninstall()
                runtime.shutdown()
                runtime.env.restore()
            from moto.ses.models import ses_backends

            emails = len(ses_backends[provisioner.clients.account_id][REGION].sent_messages)
            settings = get_settings()
            workers = {
                rate: RunShape.for_rate(rate, settings.review_shard_count, settings.review_batch_size).workers
                for rate in AWS_RATES
            }
            return Run(
                profiles, output, transitions, runtime.invocations, meter, emails,
                settings.review_shard_count, settings.review_batch_size, seconds, workers,
            )  # fmt: skip
    finally:
        get_settings.cache_clear()
        bootstrap.reset()
        os.environ.clear()
        os.environ.update(saved)


def _execute(state_machine_arn: str) -> dict[str, Any]:
    sfn = boto3.client("stepfunctions", region_name=REGION)
    arn = sfn.start_execution(stateMachineArn=state_machine_arn, input="{}")["executionArn"]
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        described = sfn.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING":
            if described["status"] != "SUCCEEDED":
                raise RuntimeError(f"the run ended {described['status']}: {described.get('error')}")
            return dict(json.loads(described["output"]))
        time.sleep(0.1)
    raise TimeoutError("the periodic review did not finish in 15 minutes")


# --- the cost model ------------------------------------------------------------------------------

PAGE_STATES = ("FirstPage", "NextPage", "AnyDue", "SendBatch", "MorePages")
RUN_STATES = ("PlanRun", "AnotherRunActive", "ReviewShards", "Summarise", "CheckRun", "RunDone", "RunFailed")


@dataclass
class Model:
    """Costs split by what drives them: the run, each page (batch) of due profiles, each profile."""

    label: str
    per_run: float
    per_shard: float
    per_batch: float
    per_profile: float

    def total(self, profiles: int, batches: int, shards: int) -> float:
        return self.per_run + shards * self.per_shard + batches * self.per_batch + profiles * self.per_profile


def cost_models(run: Run) -> list[Model]:
    due = run.output["due"]
    batches = run.transitions["SendBatch"]
    t = run.transitions
    page_transitions = sum(t[s] for s in PAGE_STATES)
    shard_transitions = sum(n for s, n in t.items() if s not in PAGE_STATES and s not in RUN_STATES)
    run_transitions = sum(t[s] for s in RUN_STATES)

    def seconds(function: str, step: str) -> float:
        return sum(i.seconds * i.memory_mb / 1024 for i in run.invocations if i.function == function and i.step == step)

    def count(function: str, step: str) -> int:
        return sum(1 for i in run.invocations if i.function == function and i.step == step)

    send_gb_s = seconds("ReviewSendFunction", "batch")
    send_memory = next(i.memory_mb for i in run.invocations if i.function == "ReviewSendFunction") / 1024
    ses_gb_s = run.emails * SES_CALL_SECONDS * send_memory
    page_gb_s = seconds("ReviewRunFunction", "page")
    run_gb_s = seconds("ReviewRunFunction", "plan") + seconds("ReviewRunFunction", "summarise")
    lambda_run = (count("ReviewRunFunction", "plan") + count("ReviewRunFunction", "summarise")) * LAMBDA_PER_REQUEST
    lambda_run += run_gb_s * LAMBDA_PER_GB_SECOND
    lambda_batch = (count("ReviewRunFunction", "page") + count("ReviewSendFunction", "batch")) * LAMBDA_PER_REQUEST
    lambda_batch += page_gb_s * LAMBDA_PER_GB_SECOND

    per_batch_labels = ("Query ReviewDue", "UpdateItem")
    rru_batch = sum(v for k, v in run.meter.rru.items() if k.startswith(per_batch_labels))
    wru_batch = sum(v for k, v in run.meter.wru.items() if k.startswith(per_batch_labels))
    rru_profile = sum(v for k, v in run.meter.rru.items() if not k.startswith(per_batch_labels))
    wru_profile = sum(v for k, v in run.meter.wru.items() if not k.startswith(per_batch_labels))
    return [
        Model(
            "Step Functions transitions",
            run_transitions * SFN_PER_TRANSITION,
            shard_transitions / run.shards * SFN_PER_TRANSITION,
            page_transitions / batches * SFN_PER_TRANSITION,
            0.0,
        ),
        Model(
            "Lambda requests + GB-s",
            lambda_run,
            0.0,
            lambda_batch / batches,
            (send_gb_s + ses_gb_s) * LAMBDA_PER_GB_SECOND / due,
        ),
        Model(
            "DynamoDB read request units",
            0.0,
            0.0,
            rru_batch * DYNAMODB_PER_RRU / batches,
            rru_profile * DYNAMODB_PER_RRU / due,
        ),
        Model(
            "DynamoDB write request units",
            0.0,
            0.0,
            wru_batch * DYNAMODB_PER_WRU / batches,
            wru_profile * DYNAMODB_PER_WRU / due,
        ),
    ]


def modelled_aws_seconds(run: Run, rate: int) -> float:
    """The run on AWS at ``rate``: sending at the campaign's share of the rate (or what the
    workers sustain, if less), plus each worker's pages' overhead one after another."""
    workers = run.workers_at[rate]
    sending = min(rate * CAMPAIGN_SHARE_OF_SES_RATE, workers * SENDS_PER_SECOND_PER_WORKER)
    pages_per_worker = math.ceil(run.transitions["SendBatch"] / workers)
    return run.emails / sending + pages_per_worker * PAGE_OVERHEAD_SECONDS


def seconds_text(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.1f} s"


def cost_per_million(run: Run) -> tuple[list[tuple[Model, float]], float]:
    batches = math.ceil(SCALE / run.batch_size) + run.shards
    models = cost_models(run)
    totals = [(model, model.total(SCALE, batches, run.shards)) for model in models]
    return totals, sum(total for _, total in totals)


def print_report(run: Run) -> bool:
    due = run.output["due"]
    meter = run.meter
    print(f"== Periodic review over {run.profiles:,} profiles, {due:,} due (moto in-process, real state machine) ==")
    print(f"run: {run.seconds:.1f} s local wall time, due {due}, sent {run.output['sent']}, "
          f"skipped {run.output['skipped']}, failed {run.output['failed']}; emails in SES: {run.emails}")  # fmt: skip
    ratio = meter.profile_items_read / due if due else float("inf")
    read_ok = ratio <= GOAL_READ_RATIO and meter.scans == 0
    print(f"selection read {meter.index_entries_read['ReviewDue']} ReviewDue index entries and "
          f"{meter.profile_items_read} profile items, {meter.scans} scans: {ratio:.2f} x due "
          f"(goal <= {GOAL_READ_RATIO}: {'ok' if read_ok else 'MISS'})")  # fmt: skip
    t = run.transitions
    print(f"state transitions: {sum(t.values())} ({', '.join(f'{n} {s}' for s, n in sorted(t.items()))})")
    by_step = Counter(f"{i.function}.{i.step}" for i in run.invocations)
    print(f"Lambda invocations: {len(run.invocations)} ({', '.join(f'{n} {s}' for s, n in sorted(by_step.items()))})")
    durations: defaultdict[str, float] = defaultdict(float)
    for invocation in run.invocations:
        durations[f"{invocation.function}.{invocation.step}"] += invocation.seconds
    print("Lambda time in-process: " + ", ".join(f"{s} {v:.2f} s" for s, v in sorted(durations.items())))
    print(f"  + modelled SES call time on AWS: {run.emails} x {SES_CALL_SECONDS * 1000:.0f} ms")
    print(f"DynamoDB calls: {dict(sorted(meter.calls.items()))}")
    print(f"DynamoDB read request units: {', '.join(f'{k} {v:g}' for k, v in sorted(meter.rru.items()))}")
    print(f"DynamoDB write request units: {', '.join(f'{k} {v:g}' for k, v in sorted(meter.wru.items()))}")
    for rate in AWS_RATES:
        sending = min(rate * CAMPAIGN_SHARE_OF_SES_RATE, run.workers_at[rate] * SENDS_PER_SECOND_PER_WORKER)
        print(f"modelled AWS run time at {rate}/s: {seconds_text(modelled_aws_seconds(run, rate))} "
              f"({run.workers_at[rate]} of {run.shards} shards in flight); 1,000,000 due at this rate: "
              f"{seconds_text(SCALE / sending)}")  # fmt: skip
    batches = math.ceil(SCALE / run.batch_size) + run.shards
    print(f"-- cost per {SCALE:,} profiles reviewed (Frankfurt list prices; {run.batch_size} per batch, "
          f"{run.shards} shards: {batches:,} batches) --")  # fmt: skip
    print(f"{'':<30} {'per run':>10} {'per batch':>12} {'per profile':>13} {'$ per 1M':>10}")
    totals, infrastructure = cost_per_million(run)
    for model, total in totals:
        print(
            f"{model.label:<30} {model.per_run:>10.6f} {model.per_batch:>12.8f} {model.per_profile:>13.9f} "
            f"{total:>10.2f}"
        )
    ses = SCALE * SES_PER_EMAIL
    share = infrastructure / ses
    print(f"{'infrastructure total':<30} {'':>10} {'':>12} {'':>13} {infrastructure:>10.2f}")
    print(f"{'SES ($0.10 per 1,000 emails)':<30} {'':>10} {'':>12} {'':>13} {ses:>10.2f}")
    print(f"infrastructure / SES: {share:.1%}   goal <= {GOAL_SHARE_OF_SES:.0%}: "
          f"{'ok' if share <= GOAL_SHARE_OF_SES else 'MISS'}")  # fmt: skip
    sends = max(1, run.emails)
    claim_and_ledger = meter.wru["PutItem"] / sends
    indexes = meter.wru["PutItem (indexes)"] / sends
    print(f"  recording each send: {claim_and_ledger:g} write units (the claim, a conditional PutItem of the "
          f"profile, and the ledger entry) + {indexes:g} in the indexes (the ReviewDue entry moving)")  # fmt: skip
    # The least a send costs under the claim design: a profile of at most 1 KB (1 unit), the
    # ledger entry (1), the ReviewDue entry moving (delete + put: 2); and the reads every send needs.
    floor_writes = (1 + 1 + 2) * DYNAMODB_PER_WRU * SCALE
    floor_reads = (1 + 0.5) * DYNAMODB_PER_RRU * SCALE
    print(f"  floor of the claim design: 4 write units (${floor_writes:.2f}) + 1.5 read units "
          f"(${floor_reads:.2f}) per send = {(floor_writes + floor_reads) / ses:.1%} of SES before any Lambda or "
          "Step Functions cost")  # fmt: skip
    print()
    return read_ok and share <= GOAL_SHARE_OF_SES


def print_growth(small: Run, large: Run) -> None:
    """How each figure grows when the table and the due profiles grow ten times."""

    def row(label: str, a: float, b: float) -> None:
        ratio = f"{b / a:>8.2f} x" if a else ("    same" if a == b else "       -")
        print(f"{label:<44} {a:>14,.2f} {b:>14,.2f} {ratio:>10}")

    print(f"== Growth from {small.profiles:,} profiles ({small.output['due']:,} due) to {large.profiles:,} "
          f"({large.output['due']:,} due) ==")  # fmt: skip
    print(f"{'':<44} {'small':>14} {'large':>14} {'ratio':>10}")
    row("profile items read", small.meter.profile_items_read, large.meter.profile_items_read)
    row("ReviewDue index entries read", small.meter.index_entries_read["ReviewDue"],
        large.meter.index_entries_read["ReviewDue"])  # fmt: skip
    row("scans", small.meter.scans, large.meter.scans)
    row("state transitions", sum(small.transitions.values()), sum(large.transitions.values()))
    row("Lambda invocations", len(small.invocations), len(large.invocations))
    row("sender batches", small.transitions["SendBatch"], large.transitions["SendBatch"])
    row("DynamoDB write units", sum(small.meter.wru.values()), sum(large.meter.wru.values()))
    row("local wall time (s)", small.seconds, large.seconds)
    for rate in AWS_RATES:
        row(f"modelled AWS run time at {rate}/s (s)", modelled_aws_seconds(small, rate),
            modelled_aws_seconds(large, rate))  # fmt: skip
    row("infrastructure $ per 1M reviewed", cost_per_million(small)[1], cost_per_million(large)[1])
    print("Reads, writes and emails grow with the due profiles (10 x), not with the table; transitions and")
    print("invocations grow with the pages, which a shard fills up to the batch size before it needs another;")
    print("the cost per 1M reviewed stays flat, so a run's cost is the number of due profiles times it.")


def main() -> int:
    warnings.filterwarnings("ignore")
    runs = []
    for profiles, due in SIZES:
        with redirect_stdout(StringIO()):  # the handlers' JSON logs
            runs.append(run_periodic_review(profiles, due))
    for run in runs:  # figures, not a gate: a goal missed is printed as MISS
        print_report(run)
    print_growth(runs[0], runs[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
