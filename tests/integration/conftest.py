"""Fixtures for state machine tests: the template's state machines executing on moto with the real
handlers, exactly as the local stack runs them (Lambda routed in-process, EventBridge delivering
to state machine targets), but under ``mock_aws`` instead of a moto server."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from devstack import patches
from tests import slate
from tests.conftest import Stack

FINISHED = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")


@dataclass
class Execution:
    arn: str
    status: str
    input: Any
    output: Any
    error: str | None
    cause: str | None


@dataclass
class StateMachineStack:
    """The ``stack`` with its state machines running the real handlers."""

    stack: Stack

    def arn(self, logical_id: str) -> str:
        return self.stack.resources.state_machines[logical_id].arn

    def start(self, logical_id: str, payload: Any = None) -> str:
        sfn = self.stack.aws("stepfunctions")
        body = json.dumps({} if payload is None else payload)
        return str(sfn.start_execution(stateMachineArn=self.arn(logical_id), input=body)["executionArn"])

    def wait(self, execution_arn: str, timeout: float = 240.0) -> Execution:
        sfn = self.stack.aws("stepfunctions")
        deadline = time.monotonic() + timeout
        while True:
            described = sfn.describe_execution(executionArn=execution_arn)
            if described["status"] in FINISHED:
                return Execution(
                    arn=execution_arn,
                    status=described["status"],
                    input=json.loads(described.get("input") or "null"),
                    output=json.loads(described["output"]) if described.get("output") else None,
                    error=described.get("error"),
                    cause=described.get("cause"),
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"execution still {described['status']} after {timeout} s")
            time.sleep(0.05)

    def run(self, logical_id: str, payload: Any = None, timeout: float = 240.0) -> Execution:
        return self.wait(self.start(logical_id, payload), timeout)

    def executions(self, logical_id: str) -> list[str]:
        sfn = self.stack.aws("stepfunctions")
        listed = sfn.list_executions(stateMachineArn=self.arn(logical_id), maxResults=1000)["executions"]
        return [item["executionArn"] for item in listed]

    def wait_all(self, logical_id: str, timeout: float = 240.0) -> list[Execution]:
        """Wait for every execution of the state machine (e.g. those an event started)."""
        self.stack.runtime.drain(timeout)
        return [self.wait(arn, timeout) for arn in self.executions(logical_id)]

    def put_event(self, source: str, detail_type: str, detail: dict[str, Any]) -> None:
        bus = self.stack.resources.refs["EventBus"]
        response = self.stack.aws("events").put_events(
            Entries=[{"EventBusName": bus, "Source": source, "DetailType": detail_type, "Detail": json.dumps(detail)}]
        )
        assert response["FailedEntryCount"] == 0, response


@pytest.fixture
def machines(stack: Stack) -> Iterator[StateMachineStack]:
    """State machines of the template execute on moto; their Lambda tasks run the real handlers."""
    stack.runtime.env.install_common(stack.resources.common_environment)
    patches.install(stack.runtime)
    try:
        yield StateMachineStack(stack)
    finally:
        # Nothing a test started may run on into the next test (moto's data is shared by the session).
        finished = slate.wait_for_executions(stack.baseline)
        stack.runtime.drain()
        patches.uninstall()
        stack.runtime.shutdown()
        stack.runtime.env.restore()
    assert finished, "a state machine execution was still running after the test"


@pytest.fixture
def log_records() -> Iterator[list[str]]:
    """Everything logged to the service's logger: message, extra fields and any exception text."""
    collected: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            exception = logging.Formatter().formatException(record.exc_info) if record.exc_info else ""
            collected.append(f"{record.getMessage()} {record.__dict__} {exception}")

    handler = Collect()
    logger = logging.getLogger("selfservice")
    logger.addHandler(handler)
    yield collected
    logger.removeHandler(handler)


class Clock:
    """The time the use cases go by, moved by the test (no sleeps, no wall clock)."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@pytest.fixture
def clock(stack: Stack) -> Iterator[Clock]:
    """Every use case's clock (pages, API and the functions they invoke), starting 2026-12-01 09:59:58 UTC."""
    from selfservice import bootstrap

    ticking = Clock(dt.datetime(2026, 12, 1, 9, 59, 58, tzinfo=dt.UTC))
    with bootstrap.override(clock=ticking):
        yield ticking
