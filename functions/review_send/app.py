"""Periodic review run, sending step (state machine ``periodic_review``).

``batch``: check and claim each profile of a page, render and send the review email through
SES at the run's rate and record it; SES or DynamoDB throttling raises
``TemporarilyUnavailable``, which the state machine retries with backoff.
``batch_failed``: count a batch that failed for good.
"""

from typing import Annotated, Any, Literal

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from selfservice.bootstrap import wiring
from selfservice.observability import new_tracer
from selfservice.settings import MAX_REVIEW_BATCH_SIZE

logger = Logger()
tracer = new_tracer()
metrics = Metrics()


class Batch(BaseModel):
    model_config = ConfigDict(extra="ignore")

    step: Literal["batch", "batch_failed"]
    runId: str = Field(min_length=1, max_length=80)
    runAt: AwareDatetime
    profileIds: list[Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]] = Field(max_length=MAX_REVIEW_BATCH_SIZE)
    sendRate: float | None = Field(default=None, gt=0)
    """Emails per second this invocation may send (the run's share of the SES rate per worker)."""


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    batch = parse(event=event, model=Batch)
    if batch.step == "batch_failed":
        return wiring().campaigns.count_failed_batch(batch.runId, batch.runAt, batch.profileIds).as_result()
    return wiring().campaigns.review_batch(batch.runId, batch.runAt, batch.profileIds, batch.sendRate).as_result()
