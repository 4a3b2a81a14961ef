"""Periodic review run, bookkeeping and selection steps (state machine ``periodic_review``).

``plan``: fix the run time (the input's ``runAt``, else the execution's start), the index shards,
the concurrency, page size and send rate that follow the SES rate; ``page``: one page of due
profile ids of a shard from the sparse ReviewDue index (counted as due at once); ``summarise``:
close the run summary (whatever was not accounted for counts as failed) and publish it as metrics.
"""

from typing import Annotated, Any, Literal

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

from selfservice.bootstrap import wiring
from selfservice.campaigns import PERIODIC
from selfservice.observability import new_tracer
from selfservice.settings import MAX_REVIEW_BATCH_SIZE

logger = Logger()
tracer = new_tracer()
metrics = Metrics()


class _Step(BaseModel):
    model_config = ConfigDict(extra="ignore")


class RunInput(_Step):
    """What a person or the schedule may pass when starting a run (``{}`` is enough)."""

    runAt: AwareDatetime | None = None


class Plan(_Step):
    step: Literal["plan"]
    executionName: str = Field(min_length=1, max_length=80)
    startedAt: AwareDatetime
    input: RunInput = Field(default_factory=RunInput)


class Page(_Step):
    step: Literal["page"]
    runId: str = Field(min_length=1, max_length=80)
    shard: str = Field(pattern=r"^REVIEW#\d{2}$")
    runAt: AwareDatetime
    pageSize: int = Field(ge=1, le=MAX_REVIEW_BATCH_SIZE)
    cursor: dict[str, str] | None = None


class Run(_Step):
    runId: str
    runAt: AwareDatetime


class Summarise(_Step):
    step: Literal["summarise"]
    run: Run
    failure: dict[str, Any] | None = None


STEPS: TypeAdapter[Plan | Page | Summarise] = TypeAdapter(
    Annotated[Plan | Page | Summarise, Field(discriminator="step")]
)


def publish(summary: dict[str, Any]) -> None:
    """The run summary as CloudWatch metrics (EMF): due, sent, failed and skipped by reason."""
    metrics.add_dimension(name="campaign", value=PERIODIC)
    metrics.add_metric(name="ReviewDue", unit=MetricUnit.Count, value=summary["due"])
    metrics.add_metric(name="ReviewSent", unit=MetricUnit.Count, value=summary["sent"])
    metrics.add_metric(name="ReviewFailed", unit=MetricUnit.Count, value=summary["failed"])
    for reason, count in summary["skipped"].items():
        with single_metric(name="ReviewSkipped", unit=MetricUnit.Count, value=count) as metric:
            metric.add_dimension(name="campaign", value=PERIODIC)
            metric.add_dimension(name="reason", value=reason)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = STEPS.validate_python(event)
    if isinstance(step, Plan):
        plan = wiring().campaigns.plan_run(step.executionName, step.startedAt, step.input.runAt)
        if plan.skipped:
            metrics.add_dimension(name="campaign", value=PERIODIC)
            metrics.add_metric(name="ReviewRunSkipped", unit=MetricUnit.Count, value=1)
        return {"run": plan.as_state(), "failure": None, "skipped": plan.skipped}
    if isinstance(step, Page):
        ids, cursor = wiring().campaigns.select_page(step.runId, step.shard, step.runAt, step.pageSize, step.cursor)
        return {"profileIds": ids, "count": len(ids), "cursor": cursor}
    error = None
    if step.failure:
        error = f"{step.failure.get('Error', 'Error')}: {str(step.failure.get('Cause', ''))[:500]}"
    summary = wiring().campaigns.finish_run(step.run.runId, step.run.runAt, error)
    publish(summary)
    return summary
