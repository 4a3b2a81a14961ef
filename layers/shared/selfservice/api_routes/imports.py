"""Import of existing subscribers with the proof of their consent (up to 1,000 per call)."""

from __future__ import annotations

from http import HTTPStatus

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.metrics import MetricUnit

from selfservice.api_errors import WITH_CONTENT, documented, json_response
from selfservice.api_models import ImportBody, ImportResult
from selfservice.api_routes.common import adapters, caller
from selfservice.usecases import imports

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
