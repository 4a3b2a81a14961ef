"""Import jobs for lists larger than one call: a JSON Lines file uploaded to S3 with a presigned URL,
imported batch by batch by the template's state machine (Distributed Map over the plan), a report."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, unquote, urlparse

import pytest

from devstack import patches
from tests.integration.test_imports import GIVEN, every_item, row


@pytest.fixture(autouse=True)
def dynamodb_as_the_local_stack_runs_it(machines):
    """Every moto patch of the local stack (``machines`` installs them): transactions that copy only their items."""
    patches.install(machines.stack.runtime)


def put_to(stack, url: str, content: bytes) -> None:
    """What the company's PUT to the presigned URL does (moto in-process cannot always take the HTTP request
    itself; the e2e test puts the file over HTTP to the running local stack)."""
    parsed = urlparse(url)
    query = parse_qs(parsed.query)
    assert query["X-Amz-Expires"] == ["3600"]
    assert "X-Amz-Signature" in query
    bucket, key = bucket_and_key(parsed)
    stack.aws("s3").put_object(Bucket=bucket, Key=key, Body=content)


def get_from(stack, url: str) -> bytes:
    bucket, key = bucket_and_key(urlparse(url))
    return bytes(stack.aws("s3").get_object(Bucket=bucket, Key=key)["Body"].read())


def bucket_and_key(parsed) -> tuple[str, str]:
    host_bucket = parsed.netloc.split(".s3.")[0] if ".s3." in parsed.netloc else None
    path = unquote(parsed.path.lstrip("/"))
    if host_bucket and host_bucket != "s3":
        return host_bucket, path
    bucket, _, key = path.partition("/")
    return bucket, key


def lines(rows: list[object]) -> bytes:
    return b"\n".join(json.dumps(r).encode() if not isinstance(r, bytes) else r for r in rows) + b"\n"


def test_a_file_of_2500_lines_is_imported_in_batches_with_a_report(machines):
    stack = machines.stack
    content = (
        [row(f"file{n}@example.com", ["news"]) for n in range(1200)]
        + [b"{not json", b"", b"   "]
        + [row(f"file{n}@example.com", ["news", "events"]) for n in range(1200, 2300)]
        + [row(f"topic{n}@example.com", ["gossip"]) for n in range(100)]
        + [b"[1, 2]"]
    )
    created = stack.request("POST", "/api/import-jobs")
    assert created.status == 201, created.text
    job = created.json
    assert job["status"] == "awaiting_upload"
    assert created.headers["Location"] == f"/api/import-jobs/{job['id']}"

    early = stack.request("POST", f"/api/import-jobs/{job['id']}/start")
    assert early.status == 409, "nothing uploaded yet"
    assert early.json["error"] == "nothing_uploaded"

    assert urlparse(job["uploadUrl"]).path.endswith(f"uploads/{job['id']}.jsonl")
    put_to(stack, job["uploadUrl"], lines(content))
    started = stack.request("POST", f"/api/import-jobs/{job['id']}/start")
    assert started.status == 202, started.text
    assert started.json["status"] in ("running", "done")
    again = stack.request("POST", f"/api/import-jobs/{job['id']}/start")
    assert again.status == 202
    execution_arn = machines.arn("ImportJobStateMachine").replace(":stateMachine:", ":execution:") + f":{job['id']}"
    execution = machines.wait(execution_arn)  # named by the job: a second start started nothing
    assert execution.status == "SUCCEEDED", execution.cause
    assert [arn for arn in machines.executions("ImportJobStateMachine") if arn.endswith(job["id"])] == [execution_arn]

    status = stack.request("GET", f"/api/import-jobs/{job['id']}").json
    assert status["status"] == "done"
    assert (status["rows"], status["batches"], status["batchesDone"]) == (2402, 3, 3)
    assert (status["created"], status["updated"], status["unchanged"], status["rejected"]) == (2300, 0, 0, 102)
    report = json.loads(get_from(stack, status["reportUrl"]))
    assert report["created"] == 2300
    refused = {r["line"]: r["problems"] for r in report["rejected"]}
    assert refused[1201] == [{"field": "line", "reason": "is not a JSON object in UTF-8"}]
    assert refused[2404] == [{"field": "line", "reason": "is not a JSON object in UTF-8"}]
    assert refused[2304] == [{"field": "topics", "reason": "unknown topic gossip"}]
    assert sorted(refused) == [1201, *range(2304, 2404), 2404]
    assert stack.sent_emails() == []
    imported = [
        item
        for item in every_item(stack)
        if item.get("kind", {}).get("S") == "consent_given" and item["source"]["S"] == "import"
    ]
    assert len(imported) == 2300
    assert all(item["detail"]["M"]["imported_job_id"]["S"] == job["id"] for item in imported)
    profile = stack.request("GET", "/api/profiles", query={"email": "file1500@example.com"}).json
    assert profile["preferences"]["topics"] == {"news": True, "events": True}
    assert GIVEN[:10] in json.dumps(stack.request("GET", f"/api/profiles/{profile['id']}/history").json)


def test_an_unknown_job_is_a_404(machines):
    stack = machines.stack
    assert stack.request("GET", f"/api/import-jobs/{'0' * 32}").status == 404
    assert stack.request("POST", f"/api/import-jobs/{'0' * 32}/start").status == 404
    assert stack.request("GET", "/api/import-jobs/not-a-job").status == 422
