"""SES bounce and complaint events (from EventBridge): suppress the address, mark the profile.

A malformed event fails the invocation; the asynchronous retries then hand it to the function's
dead-letter queue, so nothing is lost and the rest goes on.
"""

import datetime as dt
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from selfservice.bootstrap import wiring
from selfservice.feedback import SesFeedback, record_feedback
from selfservice.observability import new_tracer

logger = Logger()
tracer = new_tracer()
metrics = Metrics()


class SesFeedbackEvent(EventBridgeModel):
    detail: SesFeedback


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=SesFeedbackEvent)
def handler(event: SesFeedbackEvent, context: LambdaContext) -> dict[str, Any]:
    suppressed = record_feedback(event.detail, wiring().repository, lambda: dt.datetime.now(dt.UTC))
    if suppressed:
        name = "AddressComplained" if event.detail.eventType == "Complaint" else "AddressHardBounced"
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=suppressed)
    return {"suppressed": suppressed}
