"""Tracing off (locally, in tests): handlers trace through a provider that records nothing, and the
X-Ray SDK is not imported; on Lambda with tracing on, Powertools' X-Ray recorder is used."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]

PROBE = """
import json, sys
from selfservice.observability import new_tracer
tracer = new_tracer()

@tracer.capture_method
def double(value):
    return value * 2

@tracer.capture_lambda_handler
def handler(event, context):
    return {"doubled": double(event["value"])}

result = handler({"value": 21}, None)
failed = None
try:
    tracer.capture_lambda_handler(lambda event, context: 1 / 0)({}, None)
except ZeroDivisionError as error:
    failed = type(error).__name__
print(json.dumps({
    "result": result, "failed": failed, "disabled": tracer.disabled,
    "xray_core_imported": "aws_xray_sdk.core" in sys.modules,
}))
"""


def _run(environment: dict[str, str]) -> dict[str, object]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("POWERTOOLS_", "LAMBDA_", "AWS_SAM"))}
    env |= {"PYTHONPATH": str(REPOSITORY / "layers" / "shared"), "AWS_DEFAULT_REGION": "eu-central-1", **environment}
    output = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    return json.loads(output.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "environment",
    [{}, {"POWERTOOLS_TRACE_DISABLED": "true", "LAMBDA_TASK_ROOT": "/var/task"}, {"AWS_SAM_LOCAL": "true"}],
    ids=["outside-lambda", "disabled-by-variable", "sam-local"],
)
def test_handlers_run_untraced_without_the_xray_sdk(environment: dict[str, str]) -> None:
    found = _run(environment)
    assert found["result"] == {"doubled": 42}
    assert found["failed"] == "ZeroDivisionError", "an error in a traced handler must still reach the caller"
    assert found["disabled"] is True
    assert found["xray_core_imported"] is False


def test_on_lambda_with_tracing_on_the_xray_recorder_is_used() -> None:
    found = _run({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "false"})
    assert found["disabled"] is False
    assert found["xray_core_imported"] is True
