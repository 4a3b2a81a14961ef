"""An import job against the running local stack, as a company would run one: upload the file to the
presigned URL, start the job, poll it, read the report."""

from __future__ import annotations

import json
import time

import pytest
import requests

from tests.e2e.conftest import LocalStack

pytestmark = pytest.mark.e2e


def test_a_file_uploaded_to_the_presigned_url_is_imported_with_a_report(local_stack: LocalStack):
    consent = {"givenAt": "2025-03-02T10:15:00+01:00", "source": "shop checkout", "version": "2026-01"}
    rows = [{"email": f"job{n}@example.com", "topics": ["news"], "consent": consent} for n in range(1500)]
    content = "\n".join([*map(json.dumps, rows), "not json"]) + "\n"
    job = requests.post(f"{local_stack.http}/api/import-jobs", timeout=10).json()
    uploaded = requests.put(job["uploadUrl"], data=content.encode(), timeout=30)
    assert uploaded.status_code == 200, uploaded.text
    started = requests.post(f"{local_stack.http}/api/import-jobs/{job['id']}/start", timeout=10)
    assert started.status_code == 202, started.text
    deadline = time.monotonic() + 180
    status = started.json()
    while status["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.5)
        status = requests.get(f"{local_stack.http}/api/import-jobs/{job['id']}", timeout=10).json()
    assert status["status"] == "done", status
    assert (status["rows"], status["batches"], status["created"], status["rejected"]) == (1501, 2, 1500, 1)
    report = requests.get(status["reportUrl"], timeout=10).json()
    assert report["rejected"] == [
        {"line": 1501, "problems": [{"field": "line", "reason": "is not a JSON object in UTF-8"}]}
    ]
    found = requests.get(f"{local_stack.http}/api/profiles", params={"email": "job1499@example.com"}, timeout=10)
    assert found.json()["status"] == "subscribed"
