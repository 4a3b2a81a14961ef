"""A clean slate between tests on one moto: the template's resources stay, what a test put into them goes.

Provisioning template.yaml into moto takes seconds (every state machine definition is parsed, every
function and rule created); emptying what a test left behind takes milliseconds. :func:`capture`
remembers what provisioning created, :func:`empty` removes everything else straight from moto's
backends: table items (and their stream records), sent emails, queue messages, queues, buses and
rules a test created, state machine executions. :func:`intact` tells whether the backends still hold
the resources captured (another test's own ``mock_aws`` or moto server resets them all).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

RUNNING = "RUNNING"


def _dynamodb(account: str, region: str) -> Any:
    from moto.dynamodb.models import dynamodb_backends

    return dynamodb_backends[account][region]


def _ses(account: str, region: str) -> Any:
    from moto.ses.models import ses_backends

    return ses_backends[account][region]


def _sqs(account: str, region: str) -> Any:
    from moto.sqs.models import sqs_backends

    return sqs_backends[account][region]


def _events(account: str, region: str) -> Any:
    from moto.events.models import events_backends

    return events_backends[account][region]


def _s3(account: str) -> Any:
    from moto.s3.models import s3_backends

    return s3_backends[account]["aws"]


def _stepfunctions(account: str, region: str) -> Any:
    from moto.stepfunctions.responses import get_backend

    return get_backend(account, region)


@dataclass
class Baseline:
    """What provisioning created, by name, with the creation times moto gave the tables and state
    machines (another provisioning of the same template has other times)."""

    account: str
    region: str
    tables: dict[str, Any] = field(default_factory=dict)
    """Table name -> created at."""
    queues: set[str] = field(default_factory=set)
    rules: dict[str, set[str]] = field(default_factory=dict)
    """Bus name -> rule names."""
    state_machines: dict[str, Any] = field(default_factory=dict)
    """State machine ARN -> created at."""


def _signature(account: str, region: str) -> tuple[dict[str, Any], dict[str, Any]]:
    # moto replaces a table by a deep copy when it rolls back a transaction: compare times, not objects.
    tables = {name: table.created_at for name, table in _dynamodb(account, region).tables.items()}
    machines = {machine.arn: machine.creation_date for machine in _stepfunctions(account, region).state_machines}
    return tables, machines


def capture(account: str, region: str) -> Baseline:
    """Remember the resources moto holds now (right after provisioning)."""
    tables, machines = _signature(account, region)
    return Baseline(
        account=account,
        region=region,
        tables=tables,
        queues=set(_sqs(account, region).queues),
        rules={name: set(bus.rules) for name, bus in _events(account, region).event_buses.items()},
        state_machines=machines,
    )


def intact(baseline: Baseline) -> bool:
    """Whether moto still holds the resources captured (not reset, not replaced by someone else's)."""
    tables, machines = _signature(baseline.account, baseline.region)
    return (
        bool(baseline.tables)
        and all(tables.get(name) == created for name, created in baseline.tables.items())
        and all(machines.get(arn) == created for arn, created in baseline.state_machines.items())
    )


def running_executions(baseline: Baseline) -> int:
    backend = _stepfunctions(baseline.account, baseline.region)
    return sum(1 for machine in backend.state_machines for run in machine.executions if run.status == RUNNING)


def wait_for_executions(baseline: Baseline, timeout: float = 120.0) -> bool:
    """Wait until no state machine execution runs any more; False when some still run after ``timeout``."""
    deadline = time.monotonic() + timeout
    while running_executions(baseline):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def empty(baseline: Baseline) -> None:
    """Remove what tests stored or created; keep what the template declares."""
    account, region = baseline.account, baseline.region

    dynamodb = _dynamodb(account, region)
    for name in list(dynamodb.tables):
        if name not in baseline.tables:
            del dynamodb.tables[name]
    for table in dynamodb.tables.values():
        table.items.clear()
        if table.stream_shard is not None:
            table.stream_shard.items.clear()

    ses = _ses(account, region)
    ses.sent_messages.clear()
    ses.sent_message_count = 0
    ses.rejected_messages_count = 0

    sqs = _sqs(account, region)
    for name in list(sqs.queues):
        if name not in baseline.queues:
            del sqs.queues[name]
    for queue in sqs.queues.values():
        queue._messages = []
        queue._pending_messages = set()
        queue.deleted_messages = set()

    events = _events(account, region)
    for bus_name in list(events.event_buses):
        if bus_name not in baseline.rules:
            del events.event_buses[bus_name]
            continue
        rules = events.event_buses[bus_name].rules
        for rule_name in list(rules):
            if rule_name not in baseline.rules[bus_name]:
                del rules[rule_name]

    for bucket in _s3(account).buckets.values():  # (the template's buckets stay, empty)
        bucket.keys.clear()
        bucket.multiparts.clear()

    stepfunctions = _stepfunctions(account, region)
    stepfunctions.state_machines[:] = [
        machine for machine in stepfunctions.state_machines if machine.arn in baseline.state_machines
    ]
    for machine in stepfunctions.state_machines:
        machine.executions.clear()
