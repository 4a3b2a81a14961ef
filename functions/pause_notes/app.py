"""Pause-ending notes, once a day (EventBridge Scheduler): a few days before a pause ends, the
customer is told that emails resume, with links to extend the pause or change topics."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from selfservice.bootstrap import adapters
from selfservice.observability import new_tracer
from selfservice.usecases import pause_notes

logger = Logger()
tracer = new_tracer()
metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    outcomes = pause_notes.send_due_notes(adapters(), lambda: context.get_remaining_time_in_millis() / 1000)
    metrics.add_metric(name="PauseNotesSent", unit=MetricUnit.Count, value=outcomes.get("sent", 0))
    metrics.add_metric(name="PauseNotesFailed", unit=MetricUnit.Count, value=outcomes.get("failed", 0))
    return outcomes
