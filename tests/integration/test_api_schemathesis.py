"""Schemathesis against the API's own OpenAPI document (``GET /api/openapi.json``).

The API under test is the real handler behind the local stack's HTTP-API gateway, on moto with the
resources of template.yaml (the ``stack`` fixture), served on a free local port for the length of
the test. Schemathesis runs as its command line does (``st run``; settings in ``schemathesis.toml``
beside this file): every phase, deterministic, bounded by max-examples. Each answer must be no server
error, a status the operation declares, with the declared content type, body and headers; a request
the document calls invalid must be refused. (IAM is API Gateway's part: the gateway here signs nothing.)
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from devstack.demo import seed_demo_profiles
from devstack.runtime import HttpGateway
from selfservice.settings import DEVELOPMENT_TOKEN_SECRET
from selfservice.tokens import Purpose, TokenSigner
from tests.integration.test_import_jobs import put_to

CONFIG = Path(__file__).with_name("schemathesis.toml")
SUCCESS = {
    "POST /api/profiles": 201,
    "GET /api/profiles": 200,
    "GET /api/profiles/{profile_id}": 200,
    "PATCH /api/profiles/{profile_id}": 200,
    "DELETE /api/profiles/{profile_id}": 200,
    "GET /api/profiles/{profile_id}/history": 200,
    "POST /api/profiles/{profile_id}/self-service-link": 202,
    "GET /api/profiles/{profile_id}/consent-proof": 200,
    "POST /api/profiles/{profile_id}/consent-proof/check": 200,
    "GET /api/requests": 200,
    "GET /api/requests/{request_id}": 200,
    "PATCH /api/requests/{request_id}": 200,
    "GET /api/topics/{topic}/audience": 200,
    "POST /api/audience-exports": 202,
    "GET /api/audience-exports/{export_id}": 200,
    "POST /api/imports": 200,
    "POST /api/import-jobs": 201,
    "POST /api/import-jobs/{job_id}/start": 202,
    "GET /api/import-jobs/{job_id}": 200,
}
"""Every operation but the document itself (which schemathesis reads, not tests) and its success status."""
_PROFILE_PATH = re.compile(r"^/api/profiles/[0-9a-f]{32}")
_REQUEST_PATH = re.compile(r"^/api/requests/[0-9a-f]{32}-[0-9a-f]{16}$")
_EXPORT_PATH = re.compile(r"^/api/audience-exports/[0-9a-f]{32}$")
_JOB_PATH = re.compile(r"^/api/import-jobs/[0-9a-f]{32}")


@pytest.fixture
def api_url(machines) -> Iterator[str]:
    """The API on a local port; closing a request starts the event review, so the state machines run."""
    stack = machines.stack
    server = make_server("127.0.0.1", 0, HttpGateway(stack.runtime), threaded=False)
    thread = threading.Thread(target=server.serve_forever, name="api-under-schemathesis", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


def answered(events: Path) -> dict[str, set[int]]:
    """Operation ("GET /api/profiles/{profile_id}") -> the statuses the API answered it with, from the
    run's NDJSON report (for a path with an existing profile's id)."""
    statuses: dict[str, set[int]] = defaultdict(set)
    for line in events.read_text(encoding="utf-8").splitlines():
        [(kind, event)] = json.loads(line).items()
        if kind not in ("ScenarioFinished", "FuzzScenarioFinished"):
            continue
        for interaction in (event["recorder"].get("interactions") or {}).values():
            response = interaction.get("response")
            if not response:
                continue
            request = interaction["request"]
            path = re.sub(r"^https?://[^/]+", "", request["uri"]).split("?")[0]
            path = _PROFILE_PATH.sub("/api/profiles/{profile_id}", path)
            path = _REQUEST_PATH.sub("/api/requests/{request_id}", path)
            path = _EXPORT_PATH.sub("/api/audience-exports/{export_id}", path)
            path = path.replace("/api/topics/offers/", "/api/topics/{topic}/")
            path = _JOB_PATH.sub("/api/import-jobs/{job_id}", path)
            statuses[f"{request['method']} {path}"].add(response["status_code"])
    return statuses


def a_request(stack) -> str:
    """A customer's request, submitted on the requests page; its id."""
    anna = next(entry for entry in seed_demo_profiles() if entry["email"] == "anna.schmidt@example.com")
    token = TokenSigner([DEVELOPMENT_TOKEN_SECRET]).issue(anna["profile_id"], 0, Purpose.MANAGE)
    assert stack.client.get(f"/link?token={token}").status_code == 303
    html = stack.client.get("/requests").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', html).group(1)
    stack.client.post("/requests", data={"csrf": csrf, "type": "question", "message": "Schemathesis"})
    items = stack.request("GET", "/api/requests", query={"limit": "100"}).json["items"]
    return next(item["id"] for item in items if item["message"] == "Schemathesis")


def an_import_job(stack) -> str:
    """An import job with its file uploaded (one row), ready to start; its id."""
    job = stack.request("POST", "/api/import-jobs").json
    row = {"email": "file@example.com", "topics": ["news"]}
    row["consent"] = {"givenAt": "2025-03-02T10:15:00+01:00", "source": "schemathesis", "version": "2026-01"}
    put_to(stack, job["uploadUrl"], json.dumps(row).encode())
    return str(job["id"])


def test_the_api_answers_as_its_openapi_document_says(api_url, machines, tmp_path):
    events = tmp_path / "events.ndjson"
    command = [
        *(sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG)),
        *("run", f"{api_url}/api/openapi.json", "--no-color"),
        *("--report", "ndjson", "--report-ndjson-path", str(events)),
    ]
    # Requests are submitted on the pages, not through the API: one to read, reply to and close.
    export = machines.stack.request("POST", "/api/audience-exports", {"topic": "offers", "channel": "email"})
    # An import job's file is uploaded to S3, not through the API: one job to start and read.
    job_id = an_import_job(machines.stack)
    environment = {
        **os.environ,
        "SCHEMATHESIS_REQUEST_ID": a_request(machines.stack),
        "SCHEMATHESIS_EXPORT_ID": export.json["id"],
        "SCHEMATHESIS_IMPORT_JOB_ID": job_id,
    }
    run = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=240, check=False, env=environment
    )
    job_run = machines.arn("ImportJobStateMachine").replace(":stateMachine:", ":execution:") + f":{job_id}"
    assert machines.wait(job_run).status == "SUCCEEDED", "the job schemathesis started imports its file"
    assert run.returncode == 0, f"schemathesis found failures:\n{run.stdout[-20_000:]}\n{run.stderr[-3_000:]}"
    assert f"Tested: {len(SUCCESS)}" in run.stdout, run.stdout[-5_000:]
    statuses = answered(events)
    for operation, success in SUCCESS.items():
        assert success in statuses[operation], f"{operation} never succeeded: {sorted(statuses[operation])}"
    assert all(status < 500 for answers in statuses.values() for status in answers)
