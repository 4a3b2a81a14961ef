"""Benchmark of the audience export: what it reads, how long it takes and what it costs, at 10,000 and
100,000 profiles (the baseline and ten times it, measured in the same run).

Each size gets a fresh table on moto from template.yaml, seeded directly with BatchWriteItem (the
repository's own item layout, so the sparse Audience index holds exactly the subscribers): 80 % are
subscribers of "offers" by email (a tenth of them paused at the send time, a tenth at their frequency
cap), 20 % are not subscribed (not in the index; an export never reads them). The real
``audience_export`` state machine then runs with the real handlers (the local stack's in-process
Lambda routing), measured from the outside as ``bench_review.py`` does:

* every DynamoDB call through a botocore hook: index entries read, profile items read, scans, read
  request units from item sizes with DynamoDB's rounding rules (moto does not meter capacity);
* every state the interpreter enters (Step Functions bills state transitions);
* every Lambda invocation and its in-process duration (GB-s at the template's memory size);
* every S3 request (PUT/COPY/POST/LIST and GET are priced differently).

Printed per size: index entries read against the subscribers, profiles kept, local wall time, the
modelled time on AWS (the shards in parallel, each reading its pages one after another), request
units, GB-s, transitions, S3 requests and the cost in $ per export and per 1,000,000 profiles read;
then the ratio of every figure from the small size to the large one. Cost and time grow with the
profiles read: a ratio near 10 for what scales with them, near 1 for what does not (transitions
and invocations grow with the shards and the 8 MiB parts, not with each profile).

Run with ``PYTHONPATH=layers/shared:. python bench/bench_audience.py`` (``make bench`` does this).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
import warnings
from collections import Counter
from contextlib import redirect_stdout
from dataclasses import dataclass
from io import StringIO
from typing import Any

import boto3
from moto import mock_aws

from bench.bench_review import (
    BENCH_ENVIRONMENT,
    DYNAMODB_PER_RRU,
    LAMBDA_PER_GB_SECOND,
    LAMBDA_PER_REQUEST,
    MOTO_CONFIG,
    REGION,
    SFN_PER_TRANSITION,
    TEMPLATE_PATH,
    DynamoMeter,
    Index,
    RecordingRuntime,
    counting_transitions,
    install_meter,
    seconds_text,
)
from devstack import patches
from devstack.cfn import Template
from devstack.config import AwsClients, default_env_overrides
from devstack.provision import Provisioner
from selfservice import aws, bootstrap
from selfservice.catalog import cached_catalog
from selfservice.domain.audience import AUDIENCE_SHARD_COUNT
from selfservice.domain.models import FieldValue, Preferences, Profile, SubscriptionStatus
from selfservice.domain.review import next_review_at
from selfservice.settings import get_settings
from selfservice.storage import ProfileRepository

SIZES = (10_000, 100_000)
SCALE = 1_000_000
# S3 Standard, Europe (Frankfurt): $0.0054 per 1,000 PUT, COPY, POST, LIST requests and $0.00043 per
# 1,000 GET requests. https://aws.amazon.com/s3/pricing/ (Requests & data retrievals), as of 2025.
S3_PER_WRITE = 0.0054 / 1_000
S3_PER_READ = 0.00043 / 1_000
S3_WRITES = {"PutObject", "CopyObject", "UploadPartCopy", "UploadPart", "CreateMultipartUpload",
             "CompleteMultipartUpload", "ListObjectsV2", "DeleteObjects"}  # fmt: skip
# Not measurable on moto: how long a DynamoDB call takes from Lambda in the same region (moto's own time
# is no guide: its index query walks the whole table, so it grows with the table, not the page). An
# assumption: 10 ms per call and 50 microseconds per item it returns or asks for (a Query of 1,000
# profiles, about 1 MB, 60 ms). The Lambda time is the handlers' CPU time in-process (their thread's
# time: the 32 shards run in threads of one process, so wall time would count each other's work) with
# moto's DynamoDB CPU time taken out and this put in; plus 2 ms per state transition and 50 ms per
# Lambda invocation's overhead for the modelled AWS time.
AWS_DYNAMODB_CALL_SECONDS = 0.010
AWS_DYNAMODB_ITEM_SECONDS = 0.000050
AWS_TRANSITION_SECONDS = 0.002
AWS_INVOCATION_SECONDS = 0.050
SEND_AT = dt.datetime(2026, 12, 10, 9, 0, tzinfo=dt.UTC)


def make_profiles(count: int) -> list[Profile]:
    profiles = []
    confirmed = SEND_AT - dt.timedelta(days=200)
    for number in range(count):
        subscribed = number % 5 != 0
        preferences = Preferences(topics={"offers": True, "news": number % 2 == 0}, frequency="weekly")
        if number % 10 == 1:
            preferences.paused_until = SEND_AT + dt.timedelta(days=7)
        capped = [SEND_AT - dt.timedelta(days=day) for day in range(1, 6)] if number % 10 == 3 else []
        profiles.append(
            Profile(
                id=f"{number:032x}",
                email=f"customer{number}@example.com",
                locale="de" if number % 3 else "en",
                status=SubscriptionStatus.SUBSCRIBED if subscribed else SubscriptionStatus.UNSUBSCRIBED,
                consent_version="2026-01" if subscribed else None,
                fields={
                    "salutation": FieldValue(value="ms", confirmed_at=confirmed),
                    "first_name": FieldValue(value=f"Kundin {number}", confirmed_at=confirmed),
                    "last_name": FieldValue(value="Beispiel", confirmed_at=confirmed),
                    "city": FieldValue(value="Berlin", confirmed_at=confirmed),
                },
                preferences=preferences if subscribed else Preferences(),
                created_at=confirmed,
                updated_at=confirmed,
                last_reviewed_at=confirmed,
                marketing_emails_at=capped,
            )
        )
    return profiles


def seed(table: str, profiles: list[Profile]) -> None:
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
class DynamoTime:
    """moto's CPU time in DynamoDB calls, and what those calls would take on AWS (the assumption above)."""

    local: float = 0.0
    modelled: float = 0.0


class CpuTimedRuntime(RecordingRuntime):
    """The recording runtime, with each invocation's time taken as its thread's CPU time."""

    def invoke(self, spec: Any, payload: bytes | str | None) -> Any:
        started = time.thread_time()
        result = super().invoke(spec, payload)
        self.invocations[-1].seconds = time.thread_time() - started
        return result


@dataclass
class Run:
    profiles: int
    subscribers: int
    output: dict[str, Any]
    transitions: Counter[str]
    invocations: list[Any]
    meter: DynamoMeter
    s3: Counter[str]
    dynamodb: DynamoTime
    seconds: float
    seed_seconds: float

    @property
    def read(self) -> int:
        return int(self.meter.index_entries_read["Audience"])

    def lambda_seconds(self) -> float:
        """In-process time of every invocation, with moto's DynamoDB time replaced by AWS's (modelled)."""
        return sum(i.seconds for i in self.invocations) - self.dynamodb.local + self.dynamodb.modelled

    def gb_seconds(self) -> float:
        memory = self.invocations[0].memory_mb / 1024 if self.invocations else 0
        return self.lambda_seconds() * memory

    def costs(self) -> dict[str, float]:
        writes = sum(n for op, n in self.s3.items() if op in S3_WRITES)
        reads = sum(n for op, n in self.s3.items() if op not in S3_WRITES)
        return {
            "Step Functions transitions": sum(self.transitions.values()) * SFN_PER_TRANSITION,
            "Lambda requests + GB-s": len(self.invocations) * LAMBDA_PER_REQUEST
            + self.gb_seconds() * LAMBDA_PER_GB_SECOND,
            "DynamoDB read request units": sum(self.meter.rru.values()) * DYNAMODB_PER_RRU,
            "S3 requests": writes * S3_PER_WRITE + reads * S3_PER_READ,
        }

    def aws_seconds(self) -> float:
        """Modelled on AWS: the shards run in parallel (as many as the Map's concurrency, all 32), so the
        export takes about one shard's share of the Lambda time, invocations and transitions."""
        invocations = len(self.invocations) / AUDIENCE_SHARD_COUNT
        transitions = sum(self.transitions.values()) / AUDIENCE_SHARD_COUNT
        return (
            self.lambda_seconds() / AUDIENCE_SHARD_COUNT
            + invocations * AWS_INVOCATION_SECONDS
            + transitions * AWS_TRANSITION_SECONDS
        )


def count_s3(counts: Counter[str]) -> None:
    def after(model: Any, **_: Any) -> None:
        counts[model.name] += 1

    boto3.DEFAULT_SESSION.events.register("after-call.s3", after)


def time_dynamodb(spent: DynamoTime) -> None:
    """moto's time in each DynamoDB call, and the call's modelled time on AWS."""

    def before(context: dict[str, Any], **_: Any) -> None:
        context["bench_started"] = time.thread_time()

    def after(parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        spent.local += time.thread_time() - context.get("bench_started", time.thread_time())
        params = context.get("bench_params", {})
        asked = sum(len(r.get("Keys", [])) for r in params.get("RequestItems", {}).values())
        spent.modelled += AWS_DYNAMODB_CALL_SECONDS + AWS_DYNAMODB_ITEM_SECONDS * (len(parsed.get("Items", [])) + asked)

    boto3.DEFAULT_SESSION.events.register("before-call.dynamodb", before)
    boto3.DEFAULT_SESSION.events.register("after-call.dynamodb", after)


def run_export(profiles: int) -> Run:
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
            population = make_profiles(profiles)
            seeding = time.perf_counter()
            seed(table_name, population)
            seed_seconds = time.perf_counter() - seeding
            subscribers = sum(1 for p in population if p.status == SubscriptionStatus.SUBSCRIBED)

            meter = DynamoMeter(moto_table, indexes, key_names)
            install_meter(meter)
            s3: Counter[str] = Counter()
            count_s3(s3)
            spent = DynamoTime()
            time_dynamodb(spent)
            bootstrap.reset()
            runtime = CpuTimedRuntime(resources)
            runtime.env.install_common(resources.common_environment)
            get_settings.cache_clear()
            patches.install(runtime)
            transitions: Counter[str] = Counter()
            try:
                with counting_transitions(transitions):
                    started = time.perf_counter()
                    output = _execute(resources.state_machines["AudienceExportStateMachine"].arn)
                    seconds = time.perf_counter() - started
            finally:
                patches.uninstall()
                runtime.shutdown()
                runtime.env.restore()
            return Run(
                profiles, subscribers, output, transitions, runtime.invocations, meter, s3, spent, seconds, seed_seconds
            )
    finally:
        get_settings.cache_clear()
        bootstrap.reset()
        os.environ.clear()
        os.environ.update(saved)


def _execute(state_machine_arn: str) -> dict[str, Any]:
    sfn = boto3.client("stepfunctions", region_name=REGION)
    export = {"exportId": "b" * 32, "topic": "offers", "channel": "email", "at": SEND_AT.isoformat()}
    arn = sfn.start_execution(stateMachineArn=state_machine_arn, name=export["exportId"], input=json.dumps(export))
    deadline = time.monotonic() + 1800
    while time.monotonic() < deadline:
        described = sfn.describe_execution(executionArn=arn["executionArn"])
        if described["status"] != "RUNNING":
            if described["status"] != "SUCCEEDED":
                raise RuntimeError(f"the export ended {described['status']}: {described.get('error')}")
            return dict(json.loads(described["output"]))
        time.sleep(0.2)
    raise TimeoutError("the export did not finish in 30 minutes")


def print_report(run: Run) -> None:
    meter = run.meter
    print(f"== Audience export over {run.profiles:,} profiles, {run.subscribers:,} subscribers "
          f"(moto in-process, real state machine) ==")  # fmt: skip
    print(f"read {run.read:,} Audience index entries ({run.read / run.subscribers:.2f} x subscribers), "
          f"{meter.profile_items_read:,} table profile items, {meter.scans} scans; kept {run.output['count']:,} "
          f"in a file of {run.output['bytes'] / 1e6:.1f} MB ({run.output['bytesReadToCombine'] / 1e6:.1f} MB "
          "read to combine it)")  # fmt: skip
    print(f"time: {run.seconds:.1f} s local wall time ({run.dynamodb.local:.1f} s CPU in moto's DynamoDB; "
          f"seeding took {run.seed_seconds:.1f} s); modelled on AWS: {seconds_text(run.aws_seconds())} "
          f"({AUDIENCE_SHARD_COUNT} shards in parallel)")  # fmt: skip
    by_step = Counter(i.step for i in run.invocations)
    print(f"Lambda: {len(run.invocations)} invocations ({dict(sorted(by_step.items()))}), "
          f"{run.lambda_seconds():.2f} s = {run.gb_seconds():.2f} GB-s (in-process, moto's DynamoDB time "
          f"replaced by {run.dynamodb.modelled:.2f} s modelled)")  # fmt: skip
    print(f"state transitions: {sum(run.transitions.values())}")
    print(f"DynamoDB read request units: {', '.join(f'{k} {v:g}' for k, v in sorted(meter.rru.items()))}")
    print(f"S3 requests: {dict(sorted(run.s3.items()))}")
    costs = run.costs()
    total = sum(costs.values())
    print(f"{'':<30} {'$ this export':>14} {'$ per 1M read':>14}")
    for label, value in costs.items():
        print(f"{label:<30} {value:>14.5f} {value / run.read * SCALE:>14.3f}")
    print(f"{'total':<30} {total:>14.5f} {total / run.read * SCALE:>14.3f}")
    print()


def print_growth(small: Run, large: Run) -> None:
    def row(label: str, a: float, b: float) -> None:
        ratio = f"{b / a:>8.2f} x" if a else ("    same" if a == b else "       -")
        print(f"{label:<40} {a:>14,.3f} {b:>14,.3f} {ratio:>10}")

    print(f"== Growth from {small.profiles:,} to {large.profiles:,} profiles ==")
    print(f"{'':<40} {'small':>14} {'large':>14} {'ratio':>10}")
    row("Audience index entries read", small.read, large.read)
    row("profiles kept", small.output["count"], large.output["count"])
    row("DynamoDB read request units", sum(small.meter.rru.values()), sum(large.meter.rru.values()))
    row("Lambda GB-s (modelled DynamoDB time)", small.gb_seconds(), large.gb_seconds())
    row("Lambda invocations", len(small.invocations), len(large.invocations))
    row("state transitions", sum(small.transitions.values()), sum(large.transitions.values()))
    row("S3 requests", sum(small.s3.values()), sum(large.s3.values()))
    row("local wall time (s)", small.seconds, large.seconds)
    row("modelled AWS time (s)", small.aws_seconds(), large.aws_seconds())
    row("$ per export", sum(small.costs().values()), sum(large.costs().values()))
    row("$ per 1M profiles read", sum(small.costs().values()) / small.read * SCALE,
        sum(large.costs().values()) / large.read * SCALE)  # fmt: skip
    slope = (sum(large.costs().values()) - sum(small.costs().values())) / (large.read - small.read) * SCALE
    fixed = sum(small.costs().values()) - slope * small.read / SCALE
    print(f"cost = ${fixed:.4f} per export + ${slope:.3f} per 1,000,000 profiles read (the line through both runs);")
    print(f"an export of 10,000,000 profiles with 8,000,000 subscribers: ${fixed + slope * 8:.2f}")
    print("Reads, request units and Lambda time grow with the profiles read (10 x); transitions, invocations and")
    print(
        "S3 requests with the shards and the 8 MiB parts, so an export costs a fixed part plus a part per profile read."
    )


def main() -> int:
    warnings.filterwarnings("ignore")
    runs = []
    for profiles in SIZES:
        with redirect_stdout(StringIO()):  # the handlers' JSON logs
            runs.append(run_export(profiles))
        print(f"({profiles:,} profiles measured)", file=sys.stderr)
    for run in runs:  # figures, not a gate
        print_report(run)
    print_growth(runs[0], runs[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
