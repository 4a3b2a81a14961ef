"""Import jobs: a list too large for one call (``POST /api/imports`` takes 1,000 rows) as a JSON Lines
file in S3, imported batch by batch by a state machine, with a report.

1. ``POST /api/import-jobs`` creates a job and answers a presigned URL (one hour) to ``PUT`` the file
   to: one subscriber per line, each line a row as ``POST /api/imports`` takes it.
2. ``POST /api/import-jobs/{id}/start`` starts the state machine (execution name: the job id, so a
   second start starts nothing).
3. The state machine: *plan* reads the file once as a stream and writes a plan (the byte range of
   every 1,000 lines) next to it; a Distributed Map reads that plan (``ItemReader``) and hands each
   batch to one *batch* invocation, which reads its byte range, imports its rows with the same use
   case as the API (:func:`selfservice.usecases.imports.import_profiles`) and writes its part of the
   report; *finish* adds the parts up into the report, ``reports/<id>.json``.
4. ``GET /api/import-jobs/{id}`` answers the status, the counts and, once done, a link to the report.

A report names each refused row by its ``line`` (from 1) in the file. A batch that is retried writes
its part again (the same key), so the report counts each line once; rows the first try had written
then count as unchanged.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger

from selfservice.domain.errors import NothingUploaded
from selfservice.storage import ImportJobRepository
from selfservice.usecases.imports import MAX_ROWS, ImportReport, import_profiles
from selfservice.usecases.ports import Adapters

logger = Logger(child=True)

UPLOAD_SECONDS = 3600
REPORT_SECONDS = 3600
_CHUNK = 1 << 20
JOB_ID_PATTERN = r"^[0-9a-f]{32}$"
"""What a job id looks like (the API refuses anything else before reading)."""


def _upload_key(job_id: str) -> str:
    return f"uploads/{job_id}.jsonl"


def _plan_key(job_id: str) -> str:
    return f"plans/{job_id}.json"


def _part_key(job_id: str, batch: int) -> str:
    return f"reports/{job_id}/batch-{batch:06d}.json"


def _report_key(job_id: str) -> str:
    return f"reports/{job_id}.json"


@dataclass
class ImportJobs:
    """The jobs' ports: the use cases' adapters, the job items, S3 and Step Functions."""

    adapters: Adapters
    jobs: ImportJobRepository
    s3: Any
    stepfunctions: Any
    bucket: str
    state_machine: str

    # --- the API's side -----------------------------------------------------------------------
    def create(self, evidence: dict[str, str]) -> dict[str, Any]:
        job_id, now = uuid.uuid4().hex, self.adapters.clock()
        self.jobs.create(job_id, now, evidence)
        url = self.s3.generate_presigned_url(
            "put_object",
            Params={"Bucket": self.bucket, "Key": _upload_key(job_id), "ContentType": "application/jsonl"},
            ExpiresIn=UPLOAD_SECONDS,
        )
        logger.info("import job created", extra={"job_id": job_id})
        expires = now + dt.timedelta(seconds=UPLOAD_SECONDS)
        return {"id": job_id, "status": "awaiting_upload", "uploadUrl": url, "uploadExpiresAt": expires.isoformat()}

    def start(self, job_id: str) -> dict[str, Any]:
        job = self.jobs.get(job_id)
        if job["status"] == "awaiting_upload":
            try:
                self.s3.head_object(Bucket=self.bucket, Key=_upload_key(job_id))
            except self.s3.exceptions.ClientError as error:
                if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                    raise NothingUploaded(job_id) from None
                raise
            if self.jobs.move(job_id, "awaiting_upload", "running", self.adapters.clock()):
                self.stepfunctions.start_execution(
                    stateMachineArn=self.state_machine, name=job_id, input=json.dumps({"jobId": job_id})
                )
                logger.info("import job started", extra={"job_id": job_id})
        return self.status(job_id)

    def status(self, job_id: str) -> dict[str, Any]:
        job = self.jobs.get(job_id)
        answer: dict[str, Any] = {
            "id": job_id,
            "status": job["status"],
            "createdAt": job["created_at"],
            "rows": int(job.get("rows", 0)),
            "batches": int(job.get("batches", 0)),
            "batchesDone": int(job.get("batches_done", 0)),
            "created": int(job.get("created", 0)),
            "updated": int(job.get("updated", 0)),
            "unchanged": int(job.get("unchanged", 0)),
            "rejected": int(job.get("rejected", 0)),
            "reportUrl": None,
        }
        if job["status"] in ("done", "failed") and job.get("report_written"):
            answer["reportUrl"] = self.s3.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": _report_key(job_id)}, ExpiresIn=REPORT_SECONDS
            )
        if job.get("error"):
            answer["error"] = str(job["error"])
        return answer

    # --- the state machine's steps ------------------------------------------------------------
    def plan(self, job_id: str) -> dict[str, Any]:
        """Read the file once (streamed) and write the byte range of every ``MAX_ROWS`` lines."""
        self.jobs.get(job_id)
        batches: list[dict[str, int]] = []
        rows = 0
        for first_line, start, end, count in self._batches(job_id):
            batches.append({"batch": len(batches), "firstLine": first_line, "start": start, "end": end})
            rows += count
        self.s3.put_object(Bucket=self.bucket, Key=_plan_key(job_id), Body=json.dumps(batches).encode())
        self.jobs.add(job_id, {"rows": rows, "batches": len(batches)})
        return {"bucket": self.bucket, "planKey": _plan_key(job_id), "batches": len(batches), "rows": rows}

    def _batches(self, job_id: str) -> Iterator[tuple[int, int, int, int]]:
        """(first line number, start byte, end byte, non-empty lines) of each batch of ``MAX_ROWS`` rows."""
        body = self.s3.get_object(Bucket=self.bucket, Key=_upload_key(job_id))["Body"]
        offset, line, batch_start, batch_line, in_batch, pending = 0, 0, 0, 1, 0, b""
        while chunk := body.read(_CHUNK):
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for text in complete:
                line += 1
                offset += len(text) + 1
                if text.strip():
                    in_batch += 1
                if in_batch == MAX_ROWS:
                    yield batch_line, batch_start, offset, in_batch
                    batch_start, batch_line, in_batch = offset, line + 1, 0
        if pending.strip():
            in_batch += 1
            offset += len(pending)
        if in_batch:
            yield batch_line, batch_start, offset, in_batch

    def batch(self, job_id: str, batch: dict[str, int]) -> dict[str, int]:
        """Import one batch of the file; its part of the report goes next to the others."""
        job = self.jobs.get(job_id)
        start, end, first_line = int(batch["start"]), int(batch["end"]), int(batch["firstLine"])
        body = self.s3.get_object(Bucket=self.bucket, Key=_upload_key(job_id), Range=f"bytes={start}-{end - 1}")
        rows: list[Any] = []
        lines: list[int] = []
        unreadable: list[dict[str, Any]] = []
        for number, text in enumerate(body["Body"].read().split(b"\n"), start=first_line):
            if not text.strip():
                continue
            try:
                row = json.loads(text)
            except ValueError:
                row = None
            if not isinstance(row, dict):
                problem = {"field": "line", "reason": "is not a JSON object in UTF-8"}
                unreadable.append({"line": number, "problems": [problem]})
                continue
            rows.append(row)
            lines.append(number)
        evidence = {str(k): str(v) for k, v in (job.get("evidence") or {}).items()} | {"job_id": job_id}
        report = import_profiles(self.adapters, rows, evidence)
        rejected = [{"line": lines[r["index"]], "problems": r["problems"]} for r in report.rejected]
        rejected = sorted([*unreadable, *rejected], key=lambda r: int(r["line"]))
        part = {"created": report.created, "updated": report.updated, "unchanged": report.unchanged}
        part["rejected"] = len(rejected)
        self.s3.put_object(
            Bucket=self.bucket,
            Key=_part_key(job_id, int(batch["batch"])),
            Body=json.dumps({**part, "rejectedRows": rejected}).encode(),
        )
        self.jobs.add(job_id, {"batches_done": 1})
        return part

    def finish(self, job_id: str, status: str, error: str | None = None) -> dict[str, Any]:
        """Add the batches' parts up into the report and close the job (``done`` or ``failed``)."""
        total = ImportReport()
        rejected: list[dict[str, Any]] = []
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=f"reports/{job_id}/"):
            for listed in page.get("Contents", []):
                part = json.loads(self.s3.get_object(Bucket=self.bucket, Key=listed["Key"])["Body"].read())
                total.created += int(part["created"])
                total.updated += int(part["updated"])
                total.unchanged += int(part["unchanged"])
                rejected += part["rejectedRows"]
        rejected.sort(key=lambda r: int(r["line"]))
        report = {
            "id": job_id,
            "status": status,
            "created": total.created,
            "updated": total.updated,
            "unchanged": total.unchanged,
            "rejected": rejected,
        }
        self.s3.put_object(Bucket=self.bucket, Key=_report_key(job_id), Body=json.dumps(report).encode())
        values: dict[str, Any] = {
            "created": total.created,
            "updated": total.updated,
            "unchanged": total.unchanged,
            "rejected": len(rejected),
            "report_written": True,
        }
        if error:
            values["error"] = error[:500]
        self.jobs.move(job_id, "running", status, self.adapters.clock(), **values)
        logger.info("import job finished", extra={"job_id": job_id, "status": status, "rejected": len(rejected)})
        return {"status": status, "created": total.created, "updated": total.updated, "rejected": len(rejected)}
