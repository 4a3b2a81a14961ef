"""Benchmark of the hosted pages: weight, external requests and DynamoDB calls per page view.

Every page is requested through the same HTTP-API gateway the local stack uses, with the real web
handler, against moto with the resources of template.yaml. Printed per page:

* weight: HTML bytes including the inline stylesheet (goal: under 30 KB) and the ratio to that budget;
* external requests: URLs in src/href/action attributes that leave the site (goal: 0);
* DynamoDB calls per page view, counted by a botocore hook (goal: 1 read);
* mean time per view and its ratio to the "page not found" page measured in the same run.

Run: ``PYTHONPATH=layers/shared:. python bench/bench_pages.py`` (``make bench`` does this).
"""

from __future__ import annotations

import os
import re
import statistics
import time
import warnings
from collections import Counter
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

from moto import mock_aws
from werkzeug.test import Client

from devstack.cfn import Template
from devstack.config import AwsClients, default_env_overrides
from devstack.demo import seed_demo_profiles
from devstack.provision import Provisioner
from devstack.runtime import HttpGateway, LambdaRuntime
from selfservice import aws, bootstrap
from selfservice.settings import get_settings
from selfservice.web.views import SIGNED_IN_PAGES

REPOSITORY = Path(__file__).resolve().parents[1]
PAGES = [*SIGNED_IN_PAGES, "/new-link"]
VIEWS = 30
BUDGET_BYTES = 30 * 1024
EXTERNAL = re.compile(r'(?:src|href|action)="((?:https?:)?//[^"]+)"')


def main() -> int:
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="eu-central-1",
        POWERTOOLS_METRICS_DISABLED="true",
        POWERTOOLS_LOG_LEVEL="WARNING",
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)
    warnings.simplefilter("ignore")
    with mock_aws(config={"lambda": {"use_docker": False}}):
        resources = Provisioner(
            Template.load(REPOSITORY / "template.yaml"),
            AwsClients(None),
            env_overrides=default_env_overrides("127.0.0.1", 3000),
        ).provision_all()
        os.environ.update(resources.common_environment)
        os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
        get_settings.cache_clear()
        bootstrap.reset()
        demo = {entry["email"]: entry for entry in seed_demo_profiles()}
        client = Client(HttpGateway(LambdaRuntime(resources)))
        link = demo["eva.fischer@example.com"]["link"].replace("http://127.0.0.1:3000", "")
        assert client.get(link).status_code == 303
        calls: Counter[str] = Counter()
        aws.client("dynamodb").meta.events.register(
            "before-call.dynamodb", lambda model, **_: calls.update([model.name])
        )
        rows: list[dict[str, Any]] = []
        with open(os.devnull, "w") as sink, redirect_stdout(sink):
            _timed(client, "/this-page-does-not-exist", calls)  # warm-up: template compilation, imports
            baseline = _timed(client, "/this-page-does-not-exist", calls)[0]
            for path in PAGES:
                seconds, body, per_view = _timed(client, path, calls)
                rows.append(
                    {
                        "path": path,
                        "bytes": len(body.encode()),
                        "external": EXTERNAL.findall(body),
                        "calls": per_view,
                        "ms": seconds * 1000,
                    }
                )
    print("Hosted pages: weight, external requests, DynamoDB calls per view")
    print(f"(mean of {VIEWS} views each; baseline = the 404 page through the same gateway: {baseline * 1000:.1f} ms)\n")
    header = f"{'page':<16}{'bytes':>8}{'of 30 KB':>10}{'external':>10}  {'DynamoDB calls per view':<34}"
    print(f"{header}{'ms':>7}{'× base':>8}")
    for row in rows:
        described = ", ".join(f"{count:g} {name}" for name, count in sorted(row["calls"].items())) or "none"
        print(
            f"{row['path']:<16}{row['bytes']:>8}{row['bytes'] / BUDGET_BYTES:>10.0%}{len(row['external']):>10}  "
            f"{described:<34}{row['ms']:>7.1f}{row['ms'] / (baseline * 1000):>8.1f}"
        )
    heaviest = max(rows, key=lambda row: row["bytes"])
    worst_reads = max(sum(row["calls"].values()) for row in rows)
    print(f"\nheaviest page: {heaviest['path']} {heaviest['bytes']} bytes (goal < {BUDGET_BYTES})")
    print(f"most DynamoDB calls on one page view: {worst_reads:g} (goal: 1 read)")
    print(f"external requests on all pages: {sum(len(row['external']) for row in rows)} (goal: 0)")
    return 0


def _timed(client: Client, path: str, calls: Counter[str]) -> tuple[float, str, dict[str, float]]:
    durations = []
    body = ""
    calls.clear()
    for _ in range(VIEWS):
        started = time.perf_counter()
        response = client.get(path)
        durations.append(time.perf_counter() - started)
        body = response.get_data(as_text=True)
    per_view = {name: count / VIEWS for name, count in calls.items()}
    return statistics.mean(durations), body, per_view


if __name__ == "__main__":
    raise SystemExit(main())
