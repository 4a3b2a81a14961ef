"""Import job steps (state machine ``import_job``): ``plan`` the batches of the uploaded file, import
one ``batch`` of up to 1,000 lines, ``finish`` the report."""

from typing import Annotated, Any, Literal

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from selfservice.bootstrap import wiring
from selfservice.observability import new_tracer
from selfservice.usecases.import_jobs import JOB_ID_PATTERN

logger = Logger()
tracer = new_tracer()
metrics = Metrics()

JobId = Annotated[str, Field(pattern=JOB_ID_PATTERN)]


class Batch(BaseModel):
    model_config = ConfigDict(extra="ignore")

    batch: int = Field(ge=0)
    firstLine: int = Field(ge=1)
    start: int = Field(ge=0)
    end: int = Field(ge=1)


class Step(BaseModel):
    model_config = ConfigDict(extra="ignore")

    step: Literal["plan", "batch", "finish"]
    jobId: JobId
    batch: Batch | None = None
    status: Literal["done", "failed"] = "done"
    error: dict[str, Any] | None = None


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = parse(event=event, model=Step)
    jobs = wiring().import_jobs
    if step.step == "plan":
        return jobs.plan(step.jobId)
    if step.step == "batch" and step.batch is not None:
        part = jobs.batch(step.jobId, step.batch.model_dump())
        metrics.add_metric(name="ProfilesImported", unit=MetricUnit.Count, value=part["created"] + part["updated"])
        metrics.add_metric(name="ImportRowsRejected", unit=MetricUnit.Count, value=part["rejected"])
        return part
    if step.step == "batch":
        raise ValueError("a batch step needs its batch")
    failure = str((step.error or {}).get("Error", "")) or None
    return jobs.finish(step.jobId, step.status, failure)
