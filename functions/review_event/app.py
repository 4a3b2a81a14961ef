"""Event-triggered review (state machine ``event_review``): a shop purchase or a closed
customer-service request asks the customer, a little later, to review their profile.

``plan``: validate the EventBridge event (a malformed one goes to the dead-letter queue and
fails the execution with ``MalformedEvent``, never retried) and say until when to wait;
``review``: re-read the profile and run the check/send/record step, at most once per event
(Powertools Idempotency keyed on the detail type and the order or request id).
"""

from collections.abc import Callable
from functools import lru_cache
from typing import Any, Literal

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from selfservice.bootstrap import wiring
from selfservice.campaigns import MalformedEvent
from selfservice.observability import new_tracer

logger = Logger()
tracer = new_tracer()
metrics = Metrics()

IDEMPOTENCY_PARTITION = "IDEMPOTENCY#event-review"
IDEMPOTENCY_SECONDS = 7 * 24 * 3600
"""How long a handled event is remembered (a resend of the same order within a week is absorbed)."""


@lru_cache(maxsize=1)
def idempotency() -> tuple[IdempotencyConfig, Callable[..., dict[str, Any]]]:
    """The review step wrapped in Powertools Idempotency, its records in the single table."""
    persistence = DynamoDBPersistenceLayer(
        table_name=wiring().settings.table_name,
        key_attr="pk",
        sort_key_attr="sk",
        static_pk_value=IDEMPOTENCY_PARTITION,
        expiry_attr="expires_at",
        boto3_client=wiring().dynamodb,
    )
    config = IdempotencyConfig(
        event_key_jmespath="[detailType, eventKey]",
        raise_on_no_idempotency_key=True,
        expires_after_seconds=IDEMPOTENCY_SECONDS,
    )

    @idempotent_function(data_keyword_argument="plan", persistence_store=persistence, config=config)
    def review(plan: dict[str, Any]) -> dict[str, Any]:
        return wiring().campaigns.review_after_event(plan)

    return config, review


class PlanStep(BaseModel):
    model_config = ConfigDict(extra="ignore")

    step: Literal["plan"]
    event: Any = None


class ReviewPlan(BaseModel):
    model_config = ConfigDict(extra="ignore")

    detailType: str = Field(min_length=1)
    eventKey: str = Field(min_length=1)
    email: str | None = Field(default=None, min_length=3)
    profileId: str | None = Field(default=None, min_length=1)


class ReviewStep(BaseModel):
    model_config = ConfigDict(extra="ignore")

    step: Literal["review"]
    plan: ReviewPlan


def count(name: str) -> None:
    metrics.add_dimension(name="campaign", value="event")
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("step") == "plan":
        try:
            return wiring().campaigns.plan_event(parse(event=event, model=PlanStep).event)
        except MalformedEvent:
            count("ReviewEventMalformed")
            raise
    step = parse(event=event, model=ReviewStep)
    config, review = idempotency()
    config.register_lambda_context(context)
    outcome = review(plan=step.plan.model_dump())
    if outcome["outcome"] == "sent":
        count("ReviewSent")
    elif outcome["outcome"] == "skipped":
        with single_metric(name="ReviewSkipped", unit=MetricUnit.Count, value=1) as metric:
            metric.add_dimension(name="campaign", value="event")
            metric.add_dimension(name="reason", value=str(outcome.get("reason")))
    else:
        count("ReviewUnknownAddress")
    return outcome
