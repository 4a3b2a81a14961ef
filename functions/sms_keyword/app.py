"""Replies to our SMS (AWS End User Messaging two-way SMS, published to the inbound SNS topic): a STOP
keyword withdraws SMS consent for every topic of the profiles whose confirmed number sent it.

A malformed message fails the invocation; the asynchronous retries then hand it to the function's
dead-letter queue, so nothing is lost and the rest goes on. Other replies are ignored (counted).
"""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import SnsModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from selfservice.bootstrap import adapters
from selfservice.domain.sms import InboundSms
from selfservice.observability import new_tracer
from selfservice.usecases import sms

logger = Logger()
tracer = new_tracer()
metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    notifications = parse(event=event, model=SnsModel)
    replies = [InboundSms.model_validate_json(str(record.Sns.Message)) for record in notifications.Records]
    withdrawn = ignored = 0
    for reply in replies:
        keyword = reply.keyword()
        if keyword is None:
            ignored += 1
            continue
        withdrawn += sms.stop(adapters(), reply.originationNumber, keyword, reply.inboundMessageId)
    if withdrawn:
        metrics.add_metric(name="SmsConsentWithdrawnByKeyword", unit=MetricUnit.Count, value=withdrawn)
    if ignored:
        metrics.add_metric(name="SmsReplyIgnored", unit=MetricUnit.Count, value=ignored)
    return {"withdrawn": withdrawn, "ignored": ignored}
