"""Import of existing subscribers with the proof of their consent: up to 1,000 per call, or a file as a job."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.metrics import MetricUnit

from selfservice import bootstrap
from selfservice.api_errors import WITH_CONTENT, documented, json_response
from selfservice.api_models import ImportBody, ImportJobOut, ImportResult, NewImportJob
from selfservice.api_routes.common import CONFLICT, INVALID, NOT_FOUND, adapters, caller
from selfservice.usecases import imports
from selfservice.usecases.import_jobs import JOB_ID_PATTERN

router = Router()
metrics = Metrics()


@router.post(
    "/api/imports",
    summary="Import up to 1,000 existing subscribers with their consent proof (never sends an email)",
    responses=documented(HTTPStatus.OK, "What the import did, row by row where a row was refused", *WITH_CONTENT),
)
def import_profiles(body: ImportBody) -> Response[ImportResult]:
    report = imports.import_profiles(adapters(router), body.profiles, caller(router))
    metrics.add_metric(name="ProfilesImported", unit=MetricUnit.Count, value=report.created + report.updated)
    metrics.add_metric(name="ImportRowsRejected", unit=MetricUnit.Count, value=len(report.rejected))
    return json_response(HTTPStatus.OK, report.as_json())


JobId = Annotated[str, Path(pattern=JOB_ID_PATTERN, description="Import job id")]


@router.post(
    "/api/import-jobs",
    summary="Start an import of a large list: a URL to upload a JSON Lines file to (one row per line)",
    responses=documented(HTTPStatus.CREATED, "The job and where to upload its file", *WITH_CONTENT),
)
def create_import_job() -> Response[NewImportJob]:
    job = bootstrap.wiring().import_jobs.create(caller(router))
    return json_response(HTTPStatus.CREATED, job, {"Location": f"/api/import-jobs/{job['id']}"})


@router.post(
    "/api/import-jobs/<job_id>/start",
    summary="Import the uploaded file (a second start starts nothing)",
    responses=documented(HTTPStatus.ACCEPTED, "The job, running", *WITH_CONTENT, NOT_FOUND, CONFLICT),
)
def start_import_job(job_id: JobId) -> Response[ImportJobOut]:
    return json_response(HTTPStatus.ACCEPTED, bootstrap.wiring().import_jobs.start(job_id))


@router.get(
    "/api/import-jobs/<job_id>",
    summary="An import job: its status, the counts so far and, once done, its report",
    responses=documented(HTTPStatus.OK, "The job", NOT_FOUND, INVALID),
)
def get_import_job(job_id: JobId) -> Response[ImportJobOut]:
    return json_response(HTTPStatus.OK, bootstrap.wiring().import_jobs.status(job_id))
