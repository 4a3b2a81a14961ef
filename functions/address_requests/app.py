"""What /subscribe and /new-link asked for, answered by email after the page has answered.

Invoked asynchronously by the pages function (one invocation per admitted form); Lambda retries a
failed run twice and keeps the event in the dead-letter queue. A malformed event fails validation
and ends there too.
"""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from selfservice.bootstrap import wiring
from selfservice.observability import new_tracer
from selfservice.settings import get_settings
from selfservice.usecases import address_requests
from selfservice.usecases.ports import AddressRequest

logger = Logger()
tracer = new_tracer()
metrics = Metrics()

SENT_METRICS = {"subscribe": "ConfirmationSent", "new_link": "LinkSent"}


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=AddressRequest)
def handler(event: AddressRequest, context: LambdaContext) -> dict[str, Any]:
    # Links point where the page's links point: the domain the customer filled in the form on.
    settings = get_settings().model_copy(update={"public_base_url": event.base_url})
    outcome = address_requests.handle(wiring(settings).adapters, event)
    logger.info("address request answered", extra={"kind": event.kind, "outcome": outcome})
    if outcome == "sent":
        metrics.add_metric(name=SENT_METRICS[event.kind], unit=MetricUnit.Count, value=1)
    return {"kind": event.kind, "outcome": outcome}
