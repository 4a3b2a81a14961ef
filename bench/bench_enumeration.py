"""Benchmark: does the answer time of /subscribe and /new-link tell a known address from an unknown one?

The real web handler answers through the local stack's HTTP-API gateway, in-process, against moto
with the resources of template.yaml. For each form, known and unknown addresses are posted in one
run, interleaved in a shuffled order. Known addresses have a profile that is not subscribed (so the
hand-off has the most to do: a request kept aside and an email); unknown addresses have none. Every
sample starts from the same table (what a sample wrote is taken back afterwards, untimed), so each
request takes the path a first request takes, no limit is ever reached, and the table does not grow
under the later samples.

Printed per form:

* the page's answer time (the product): median for known and unknown addresses, their ratio, and
  the separability: the accuracy of the best threshold on the answer time at telling known from
  unknown (50 % = indistinguishable, 100 % = always right). Next to it the noise floor: the same
  figure for the same times with the labels shuffled (median and 95th percentile of 200 shuffles),
  which is what a threshold "finds" in samples of this size when there is nothing to find.
* the baseline, measured in the same run: the time of the hand-off's work for the same requests
  (lookup, decision, email), run after each answer as its own invocation, as on AWS. That is what
  the answer time showed when the page did this work itself.

Goal: the page's separability within the noise floor (at most its 95th percentile).

Run: ``PYTHONPATH=layers/shared:. python bench/bench_enumeration.py [samples per class]``
(``make bench`` does this, with 300).
"""

from __future__ import annotations

import copy
import gc
import os
import random
import re
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moto import mock_aws
from werkzeug.test import Client

from devstack import patches
from devstack.cfn import Template
from devstack.config import AwsClients, default_env_overrides
from devstack.provision import FunctionSpec, Provisioner
from devstack.runtime import HttpGateway, LambdaRuntime
from selfservice import bootstrap
from selfservice.settings import get_settings

REPOSITORY = Path(__file__).resolve().parents[1]
SAMPLES = 300
SHUFFLES = 200
WARM_UP = 20
ADDRESSES = 25
SEED = 20261201
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class DeferringRuntime(LambdaRuntime):
    """Keeps asynchronous invocations until :meth:`run_deferred`: on AWS the hand-off runs in another
    execution environment, so it must not share the answer's time (or the CPU) here either."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.deferred: list[tuple[FunctionSpec, bytes | str]] = []

    def invoke_async(self, spec: FunctionSpec, payload: bytes | str) -> Future[None]:
        self.deferred.append((spec, payload))
        done: Future[None] = Future()
        done.set_result(None)
        return done

    def run_deferred(self) -> float:
        """Run what was handed over, one after the other; their time in seconds."""
        started = time.perf_counter()
        while self.deferred:
            spec, payload = self.deferred.pop(0)
            result = self.invoke(spec, payload)
            if result.function_error:
                raise RuntimeError(f"{spec.logical_id} failed: {result.payload[:300]!r}")
        return time.perf_counter() - started


@dataclass
class Sample:
    known: bool
    answer: float
    handoff: float


@dataclass
class Measured:
    form: str
    samples: list[Sample] = field(default_factory=list)

    def times(self, known: bool, what: Callable[[Sample], float]) -> list[float]:
        return [what(sample) for sample in self.samples if sample.known is known]


def separability(known: list[float], unknown: list[float]) -> float:
    """Accuracy of the best single threshold on the time at telling known from unknown (either way
    round), with both classes weighted equally: 0.5 means no threshold does better than a coin."""
    labelled = sorted([(value, 1) for value in known] + [(value, 0) for value in unknown])
    total_known, total_unknown = len(known), len(unknown)
    best = 0.5
    below_known = below_unknown = 0
    for index, (value, is_known) in enumerate(labelled):
        below_known += is_known
        below_unknown += 1 - is_known
        if index + 1 < len(labelled) and labelled[index + 1][0] == value:
            continue  # a threshold cannot split equal times
        # "unknown if at most the threshold, known above it", and the other way round
        rate = (below_unknown / total_unknown + (total_known - below_known) / total_known) / 2
        best = max(best, rate, 1 - rate)
    return best


def noise_floor(known: list[float], unknown: list[float], rng: random.Random) -> tuple[float, float]:
    """Median and 95th percentile of :func:`separability` with the labels shuffled."""
    pooled = known + unknown
    found = []
    for _ in range(SHUFFLES):
        rng.shuffle(pooled)
        found.append(separability(pooled[: len(known)], pooled[len(known) :]))
    found.sort()
    return statistics.median(found), found[int(0.95 * (len(found) - 1))]


def main() -> int:
    samples = int(sys.argv[1]) if len(sys.argv) > 1 else SAMPLES
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="eu-central-1",
        POWERTOOLS_METRICS_DISABLED="true",
        POWERTOOLS_LOG_LEVEL="WARNING",
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)
    warnings.simplefilter("ignore")
    rng = random.Random(SEED)
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
        runtime = DeferringRuntime(resources)
        # as the local stack runs: invocations to the runtime, transactions without whole-table copies
        patches.install(runtime, only={"invoke", "copy", "transact_write_items", "call_action"})
        try:
            client = Client(HttpGateway(runtime))
            with open(os.devnull, "w") as sink, redirect_stdout(sink):
                results = [measure(client, runtime, form, samples, rng) for form in ("/subscribe", "/new-link")]
        finally:
            patches.uninstall()
            runtime.shutdown()
    report(results, samples, rng)
    return 0


def measure(client: Client, runtime: DeferringRuntime, form: str, samples: int, rng: random.Random) -> Measured:
    name = form.strip("/")
    known = [f"known.{name}.{number}@example.com" for number in range(ADDRESSES)]
    unknown = [f"unknown.{name}.{number}@example.com" for number in range(ADDRESSES)]
    for address in known:  # profiles that exist and are not subscribed (created by the shop, say)
        created = client.post("/api/profiles", json={"email": address, "locale": "en"})
        assert created.status_code == 201, created.get_data(as_text=True)[:300]
    html = client.get(form).get_data(as_text=True)
    match = CSRF.search(html)
    assert match, "no CSRF token on the form"
    table = TableState()
    gc.collect()
    gc.freeze()  # moto, boto3 and the stack stay: later collections look only at what samples made
    order = [True] * (samples + WARM_UP) + [False] * (samples + WARM_UP)
    rng.shuffle(order)
    measured = Measured(form)
    for position, is_known in enumerate(order):
        fields: dict[str, Any] = {"csrf": match.group(1), "email": rng.choice(known if is_known else unknown)}
        if form == "/subscribe":
            fields["topic"] = ["news", "offers"]
        started = time.perf_counter()
        response = client.post(form, data=fields)
        answer = time.perf_counter() - started
        assert response.status_code == 200, response.get_data(as_text=True)[:300]
        handoff = runtime.run_deferred()
        table.restore()
        gc.collect()  # every answer starts on a tidy heap: a collection is noise, not signal
        if position >= 2 * WARM_UP:
            measured.samples.append(Sample(is_known, answer, handoff))
    return measured


class TableState:
    """The profile table's items as they are now, to put back after each sample (moto's own data)."""

    def __init__(self) -> None:
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.dynamodb.models import dynamodb_backends

        backend = dynamodb_backends[DEFAULT_ACCOUNT_ID]["eu-central-1"]
        self._table = backend.get_table(get_settings().table_name)
        self._items = copy.deepcopy(self._table.items)

    def restore(self) -> None:
        self._table.items = copy.deepcopy(self._items)


def report(results: list[Measured], samples: int, rng: random.Random) -> None:
    print("Known vs. unknown addresses: answer time of the two address forms")
    print(
        f"({samples} known and {samples} unknown addresses per form, interleaved in a shuffled order, after "
        f"{2 * WARM_UP} warm-up requests; separability: best-threshold accuracy, 50 % = indistinguishable;\n"
        f" noise floor: the same with the labels shuffled, median / 95th percentile of {SHUFFLES})\n"
    )
    header = (
        f"{'form':<12}{'what':<26}{'known ms':>10}{'unknown ms':>12}{'ratio':>8}{'separability':>14}"
        f"{'noise floor':>16}  verdict"
    )
    print(header)
    for measured in results:
        for label, what in (
            ("page answer (product)", lambda sample: sample.answer),
            ("hand-off work (baseline)", lambda sample: sample.handoff),
        ):
            known = measured.times(True, what)
            unknown = measured.times(False, what)
            found = separability(known, unknown)
            floor_median, floor_95 = noise_floor(known, unknown, rng)
            median_known, median_unknown = statistics.median(known) * 1000, statistics.median(unknown) * 1000
            verdict = "indistinguishable" if found <= floor_95 else "tells them apart"
            print(
                f"{measured.form:<12}{label:<26}{median_known:>10.2f}{median_unknown:>12.2f}"
                f"{median_known / median_unknown:>8.2f}{found:>13.1%}{floor_median:>8.1%} /{floor_95:>6.1%}  {verdict}"
            )
    print(
        "\nThe page does the same work for every address (two limits counted, one asynchronous hand-off);"
        "\nthe baseline is the work the hand-off does afterwards, which the answer showed when the page did it."
    )


if __name__ == "__main__":
    raise SystemExit(main())
