"""``NewsletterSent`` events reported by sending systems, from the bus through an SQS queue.

Each message is one event (Powertools Batch, partial failures): its recipients' histories show the
newsletter and it counts against their frequency. A message that is not a valid ``NewsletterSent``
fails the Parser model and, after the queue's receive attempts, lands in the dead-letter queue; the
rest of the batch goes on. Unknown profile ids are skipped and counted.
"""

from typing import Any, Literal

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field, Json

from selfservice.bootstrap import wiring
from selfservice.observability import new_tracer
from selfservice.usecases.newsletters import NewsletterSent, record_newsletter_sent

logger = Logger()
tracer = new_tracer()
metrics = Metrics()


class NewsletterSentEvent(BaseModel):
    """The EventBridge event as the rule puts it into the queue (only what is read is required)."""

    id: str
    source: Literal["newsletter"]
    detail_type: Literal["NewsletterSent"] = Field(alias="detail-type")
    detail: NewsletterSent


class NewsletterSentRecord(SqsRecordModel):
    body: Json[NewsletterSentEvent]


processor = BatchProcessor(event_type=EventType.SQS, model=NewsletterSentRecord)


def record(record: NewsletterSentRecord) -> None:
    outcome = record_newsletter_sent(wiring().adapters, record.body.detail)
    metrics.add_metric(name="NewsletterRecipientsRecorded", unit=MetricUnit.Count, value=outcome.recorded)
    metrics.add_metric(name="NewsletterRecipientsDuplicate", unit=MetricUnit.Count, value=outcome.duplicates)
    metrics.add_metric(name="NewsletterRecipientsUnknown", unit=MetricUnit.Count, value=outcome.unknown)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> Any:
    return process_partial_response(event=event, record_handler=record, processor=processor, context=context)
