"""Benchmark of the import (``POST /api/imports``): a call of 1,000 rows against a baseline of 100 rows,
in the same run, through the real API handler against moto with the template's resources.

For each call it prints the DynamoDB calls by operation (botocore ``before-call`` hook), the calls per
row, the handler's time, and the ratio of each to the 100-row baseline. Scenarios: new addresses
(100, then 1,000), the same 1,000 posted again (all unchanged), and 1,000 existing profiles given a
topic (each queries its ledger for newer consents). What scales with the rows should grow ten times
from 100 to 1,000 rows, not more (calls per row about the same).

Time is moto's in-process time (not DynamoDB's): informational, except the ratio. A modelled time on
DynamoDB is printed from the calls with typical latencies (stated below, not measured here), to
compare with the API function's 15 s timeout.

moto's transactions are run as the local stack runs them (``devstack.patches``: without them a
TransactWriteItems deep-copies the whole table once per operation, which measures moto, not the code).

Run: ``PYTHONPATH=layers/shared:. python bench/bench_import.py`` (``make bench`` does this).
"""

from __future__ import annotations

import json
import os
import time
import warnings
from collections import Counter
from contextlib import redirect_stdout
from typing import Any

from bench_api import CallCounter, Context, http_api_event, load_api_module, local_stack  # the script's folder

from devstack import patches
from selfservice import aws

# Typical DynamoDB latencies in one region, from Lambda (milliseconds; assumptions for the model, not
# measurements): a BatchGetItem of 100 keys, a Query, a TransactWriteItems of up to 100 operations.
MODEL_MS = {"BatchGetItem": 15.0, "Query": 6.0, "TransactWriteItems": 45.0, "GetItem": 5.0, "PutItem": 8.0}
TIMEOUT_S = 15.0


def rows(prefix: str, count: int, topics: list[str]) -> list[dict[str, Any]]:
    consent = {"givenAt": "2025-03-02T10:15:00+01:00", "source": "bench", "version": "2026-01"}
    return [
        {"email": f"{prefix}{n}@example.com", "topics": topics, "fields": {"first_name": f"B{n}"}, "consent": consent}
        for n in range(count)
    ]


def main() -> None:
    patches.install(None, only={"copy", "transact_write_items"})
    try:
        run()
    finally:
        patches.uninstall()


def run() -> None:
    results: list[tuple[str, int, Counter[str], float, dict[str, Any]]] = []
    with local_stack():
        api = load_api_module()
        counter = CallCounter()
        aws.client("dynamodb").meta.events.register("before-call", counter)

        def post(name: str, batch: list[dict[str, Any]]) -> None:
            event = http_api_event("POST", "/api/imports", body={"profiles": batch})
            counter.take()
            started = time.perf_counter()
            with open(os.devnull, "w", encoding="utf-8") as devnull, redirect_stdout(devnull):
                response = api.handler(event, Context())
            elapsed = time.perf_counter() - started
            if response["statusCode"] != 200:
                raise RuntimeError(f"{name}: {response}")
            report = json.loads(response["body"])
            results.append((name, len(batch), counter.take(), elapsed, report))

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="No application metrics to publish")
            post("warm-up (not counted)", rows("warm", 5, ["news"]))
            results.clear()
            post("100 new (baseline)", rows("base", 100, ["news"]))
            post("1,000 new", rows("new", 1000, ["news"]))
            post("1,000 again (unchanged)", rows("new", 1000, ["news"]))
            post("1,000 existing, +1 topic", rows("new", 1000, ["news", "offers"]))

    _name, base_rows, base_calls, base_time, _report = results[0]
    base_total = sum(base_calls.values())
    print("POST /api/imports on moto (the API handler, template resources), DynamoDB calls by operation")
    print(f"{'call':28} {'rows':>5} {'created/updated/unchanged':>26} {'calls':>6} {'per row':>8} "
          f"{'x calls':>8} {'moto s':>7} {'x time':>7} {'model s':>8}")  # fmt: skip
    for name, count, calls, elapsed, report in results:
        total = sum(calls.values())
        modelled = sum(MODEL_MS.get(op.split(":")[1], 10.0) * n for op, n in calls.items()) / 1000
        outcome = f"{report['created']}/{report['updated']}/{report['unchanged']}"
        print(
            f"{name:28} {count:>5} {outcome:>26} {total:>6} {total / count:>8.3f} "
            f"{total / base_total:>8.2f} {elapsed:>7.2f} {elapsed / base_time:>7.2f} {modelled:>8.2f}"
        )
        print("    " + ", ".join(f"{op.split(':')[1]} {n}" for op, n in sorted(calls.items())))
    print(
        f"x calls / x time: against the {base_rows}-row baseline of the same run (10.00 = linear in the rows). "
        f"model s: the calls at {', '.join(f'{op} {ms:g} ms' for op, ms in MODEL_MS.items())} "
        f"(assumed, sequential), against the API function's {TIMEOUT_S:g} s timeout."
    )


if __name__ == "__main__":
    main()
