"""Benchmark of the JSON API: AWS calls per request and the cold-start cost of the handler module.

1. Calls per request: GET and PATCH of a profile and GET by email, each N times through the real
   handler (functions/api/app.py) against moto, with the resources created from template.yaml by
   the local stack's provisioner. Every AWS API call the handler's clients make is counted by a
   botocore ``before-call`` hook. Goals: GET 1 GetItem; PATCH 1 GetItem + 1 TransactWriteItems;
   GET ?email= 1 Query on the keys-only ByEmail index + 1 GetItem (the index does not copy
   profiles, so writes stay cheap; the profile read is consistent). Latencies are informational
   (moto in-process, not DynamoDB).
2. Cold init: ``import app`` of the API and of the pages handler (functions/web/app.py), each in
   fresh interpreters, against a minimal Powertools + boto3 handler module measured in the same run
   (runs interleaved, median of several), and each one's ratio to it. Goal: both ratios <= 1.5.
   Measured as the local stack and the tests run the handlers (tracing off, catalogs compiled from
   their .po); on Lambda the X-Ray SDK is imported when tracing is on, and the catalogs are .mo files.

Run with the shared layer on the import path: ``PYTHONPATH=layers/shared:. python bench/bench_api.py``
(``make bench`` does this); ``--cold-init-only`` prints only the cold init figures.
"""

from __future__ import annotations

import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlencode

from moto import mock_aws

from devstack.cfn import ACCOUNT_ID, Template
from devstack.config import AwsClients
from devstack.provision import Provisioner
from selfservice import aws, bootstrap
from selfservice.settings import get_settings

REPOSITORY = Path(__file__).resolve().parents[1]
TEMPLATE_PATH = REPOSITORY / "template.yaml"
API_DIR = REPOSITORY / "functions" / "api"
WEB_DIR = REPOSITORY / "functions" / "web"
SHARED_LAYER_DIR = REPOSITORY / "layers" / "shared"
REGION = "eu-central-1"
REQUESTS = 200
COLD_RUNS = 11
COLD_INIT_GOAL = 1.5
COUNTED_SERVICES = ("dynamodb", "events", "sesv2", "ssm")

# Local stand-ins for what Lambda provides; the template's own variables come from the provisioner.
BENCH_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "POWERTOOLS_METRICS_NAMESPACE": "SelfService",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}
# Applied on top of the template's environment: content from the repository, no SSM secret.
LOCAL_OVERRIDES: dict[str, str | None] = {
    "CONTENT_DIR": str(REPOSITORY / "templates"),
    "TOKEN_SECRET_PARAMETER": None,
    **BENCH_ENVIRONMENT,
}

BASELINE_MODULE = """\
import boto3
from aws_lambda_powertools import Logger

logger = Logger()


def handler(event, context):
    return {}
"""

# For reading the ratios: what any Powertools HTTP handler with a pydantic model pays on top of the
# baseline (the resolver package imports every resolver, asyncio included; pydantic its core).
FLOOR_MODULE = """\
import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from pydantic import BaseModel

logger = Logger()
app = APIGatewayHttpResolver()


class Item(BaseModel):
    name: str


def handler(event, context):
    return app.resolve(event, context)
"""

TIMED_IMPORT = """\
import importlib, sys, time
started = time.perf_counter()
importlib.import_module(sys.argv[1])
print(time.perf_counter() - started)
"""


@dataclass
class Context:
    """The attributes of the Lambda context object that Powertools reads."""

    function_name: str = "selfservice-api-bench"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:selfservice-api-bench"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"

    def get_remaining_time_in_millis(self) -> int:
        return 15_000


@dataclass
class CallCounter:
    """Counts AWS API calls by ``service:Operation`` (botocore ``before-call`` hook)."""

    calls: Counter[str] = field(default_factory=Counter)

    def __call__(self, model: Any, **_: Any) -> None:
        # A before-call handler that returns a value would short-circuit the request: return None.
        self.calls[f"{model.service_model.service_name}:{model.name}"] += 1

    def take(self) -> Counter[str]:
        taken, self.calls = self.calls, Counter()
        return taken


def http_api_event(
    method: str,
    path: str,
    *,
    query: dict[str, str] | None = None,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload format 2.0) event for the IAM-authorized /api routes."""
    raw_query = urlencode(query or {})
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "ANY /api/{proxy+}",
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": {"content-type": "application/json", "host": "api.example.com", **(headers or {})},
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": "bench",
            "domainName": "api.example.com",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "198.51.100.7",
                "userAgent": "bench",
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "ANY /api/{proxy+}",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "pathParameters": {"proxy": path.removeprefix("/api/")},
        "isBase64Encoded": False,
    }
    if query:
        event["queryStringParameters"] = dict(query)
    if body is not None:
        event["body"] = json.dumps(body)
    return event


def load_api_module() -> ModuleType:
    """functions/api/app.py, loaded by file path (as Lambda imports ``app`` from /var/task)."""
    spec = importlib.util.spec_from_file_location("bench_api_app", API_DIR / "app.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextmanager
def local_stack() -> Iterator[dict[str, str]]:
    """moto with the template's resources; yields the API function's environment (already applied)."""
    saved = dict(os.environ)
    os.environ.update(BENCH_ENVIRONMENT)
    try:
        with mock_aws():
            provisioner = Provisioner(Template.load(TEMPLATE_PATH), AwsClients(None), env_overrides=LOCAL_OVERRIDES)
            resources = provisioner.provision_all()
            spec = next(s for s in resources.functions.values() if s.code_dir.resolve() == API_DIR.resolve())
            os.environ.update(spec.environment)
            get_settings.cache_clear()
            bootstrap.reset()
            yield dict(spec.environment)
    finally:
        get_settings.cache_clear()
        bootstrap.reset()
        os.environ.clear()
        os.environ.update(saved)


@dataclass
class Scenario:
    name: str
    goal: Counter[str]
    request: Callable[[int], dict[str, Any]]


@dataclass
class Result:
    scenario: Scenario
    calls: Counter[str]
    latencies_ms: list[float]

    def per_request(self) -> dict[str, float]:
        return {op: count / len(self.latencies_ms) for op, count in sorted(self.calls.items())}

    def meets_goal(self) -> bool:
        dynamodb = {op: n for op, n in self.per_request().items() if op.startswith("dynamodb:")}
        return dynamodb == {op: float(n) for op, n in self.scenario.goal.items()}


def measure_calls(requests: int = REQUESTS) -> list[Result]:
    """Run each scenario ``requests`` times through the handler and count the AWS calls."""
    with local_stack():
        api = load_api_module()
        counter = CallCounter()
        for service in COUNTED_SERVICES:
            aws.client(service).meta.events.register("before-call", counter)

        def invoke(event: dict[str, Any], expected: int) -> dict[str, Any]:
            response: dict[str, Any] = api.handler(event, Context())
            if response["statusCode"] != expected:
                raise RuntimeError(f"{event['requestContext']['http']['method']} {event['rawPath']}: {response}")
            return response

        email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
        created = invoke(http_api_event("POST", "/api/profiles", body={"email": email, "locale": "de"}), 201)
        profile = json.loads(created["body"])
        path = f"/api/profiles/{profile['id']}"
        state = {"version": int(profile["version"])}

        def patch(index: int) -> dict[str, Any]:
            body = {"fields": {"first_name": f"Bench {index}"}, "version": state["version"]}
            response = invoke(http_api_event("PATCH", path, body=body), 200)
            state["version"] = int(json.loads(response["body"])["version"])
            return response

        scenarios = [
            Scenario(
                "GET /api/profiles/{id}",
                Counter({"dynamodb:GetItem": 1}),
                lambda _: invoke(http_api_event("GET", path), 200),
            ),
            Scenario(
                "PATCH /api/profiles/{id}", Counter({"dynamodb:GetItem": 1, "dynamodb:TransactWriteItems": 1}), patch
            ),
            Scenario(
                "GET /api/profiles?email=",
                Counter({"dynamodb:Query": 1, "dynamodb:GetItem": 1}),
                lambda _: invoke(http_api_event("GET", "/api/profiles", query={"email": email}), 200),
            ),
        ]
        results = []
        # EMF metric lines go to stdout (Powertools re-prints disabled metrics every 100 data points).
        with open(os.devnull, "w", encoding="utf-8") as devnull, redirect_stdout(devnull), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="No application metrics to publish")
            for scenario in scenarios:
                scenario.request(-1)  # warm-up: first-use imports and client set-up are not per-request costs
                counter.take()
                latencies = []
                for index in range(requests):
                    started = time.perf_counter()
                    scenario.request(index)
                    latencies.append((time.perf_counter() - started) * 1000)
                results.append(Result(scenario, counter.take(), latencies))
        return results


def _timed_import(module: str, directory: Path, environment: dict[str, str]) -> float:
    output = subprocess.run(
        [sys.executable, "-c", TIMED_IMPORT, module],
        cwd=directory,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(output.stdout.strip().splitlines()[-1])


@dataclass
class ColdInit:
    """Median seconds to import each handler module and the baseline, in fresh interpreters."""

    handlers: dict[str, float]
    baseline: float
    floor: float
    runs: int


def measure_cold_init(runs: int = COLD_RUNS) -> ColdInit:
    """``import app`` of the API and the pages handler against a minimal Powertools + boto3 handler."""
    environment = {
        **{key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "POWERTOOLS_"))},
        **BENCH_ENVIRONMENT,
        "PYTHONPATH": str(SHARED_LAYER_DIR),
        "POWERTOOLS_SERVICE_NAME": "selfservice",
        "TABLE_NAME": "selfservice-bench",
        "CONTENT_DIR": str(REPOSITORY / "templates"),
    }
    with tempfile.TemporaryDirectory(prefix="bench-baseline-") as folder:
        baseline_dir = Path(folder)
        (baseline_dir / "baseline.py").write_text(BASELINE_MODULE, encoding="utf-8")
        (baseline_dir / "floor.py").write_text(FLOOR_MODULE, encoding="utf-8")
        modules = {
            "functions/api/app.py": ("app", API_DIR),
            "functions/web/app.py": ("app", WEB_DIR),
            "baseline": ("baseline", baseline_dir),
            "floor": ("floor", baseline_dir),
        }
        # One discarded run each, so all read compiled bytecode, as from a built package.
        for module, directory in modules.values():
            _timed_import(module, directory, environment)
        times: dict[str, list[float]] = {name: [] for name in modules}
        for _ in range(runs):  # interleaved, so machine noise hits all alike
            for name, (module, directory) in modules.items():
                times[name].append(_timed_import(module, directory, environment))
    medians = {name: statistics.median(values) for name, values in times.items()}
    baseline, floor = medians.pop("baseline"), medians.pop("floor")
    return ColdInit(medians, baseline, floor, runs)


def _format_calls(calls: dict[str, float]) -> str:
    return ", ".join(f"{n:g} {op.split(':', 1)[1]}" for op, n in calls.items()) or "none"


def print_calls(results: list[Result]) -> None:
    print(f"== AWS calls per request (N={REQUESTS} each, moto in-process) ==")
    header = f"{'request':<28} {'DynamoDB calls / request':<34} {'other AWS calls / request':<28} {'goal':<5} mean ms"
    print(header)
    print("-" * len(header))
    for result in results:
        per_request = result.per_request()
        dynamodb = {op: n for op, n in per_request.items() if op.startswith("dynamodb:")}
        other = {op: n for op, n in per_request.items() if not op.startswith("dynamodb:")}
        other_text = ", ".join(f"{n:g} {op}" for op, n in other.items()) or "none"
        goal = "ok" if result.meets_goal() else "MISS"
        print(
            f"{result.scenario.name:<28} {_format_calls(dynamodb):<34} {other_text:<28} {goal:<5} "
            f"{statistics.fmean(result.latencies_ms):.2f}"
        )
    for result in results:
        if not result.meets_goal():
            print(f"  goal for {result.scenario.name}: {_format_calls(dict(result.scenario.goal))}")
    print()


def print_cold_init(cold: ColdInit) -> None:
    print(f"== Cold init: import time in fresh interpreters (median of {cold.runs}, interleaved) ==")
    for name, seconds in cold.handlers.items():
        print(f"{name:<40} {seconds * 1000:8.1f} ms")
    print(f"{'baseline (boto3 + Powertools Logger)':<40} {cold.baseline * 1000:8.1f} ms")
    print(f"{'  + HTTP resolver + a pydantic model':<40} {cold.floor * 1000:8.1f} ms")
    for name, seconds in cold.handlers.items():
        ratio = seconds / cold.baseline
        goal = "ok" if ratio <= COLD_INIT_GOAL else "MISS"
        print(f"{'ratio ' + name.split('/')[1] + ' / baseline':<40} {ratio:8.2f}  (goal <= {COLD_INIT_GOAL}: {goal})")
    print(f"{'ratio resolver + pydantic / baseline':<40} {cold.floor / cold.baseline:8.2f}  (any such handler)")
    print()


def main(argv: list[str]) -> int:
    if "--cold-init-only" not in argv:
        print_calls(measure_calls())
    print_cold_init(measure_cold_init())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
