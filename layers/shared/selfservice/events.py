"""Events this product puts on the bus (source ``self-service``) for other systems to react to.

An event reports a change that is already committed (with its ledger entry). So a bus that
refuses the event must not turn the customer's saved change into an error: the publisher retries
refused entries (PutEvents answers 200 with per-entry errors such as throttling, which the SDK
does not retry), and when the bus keeps refusing it logs the event's type and ids, counts
``EventPublishFailed`` for the operators' alarm, and lets the request succeed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from botocore.exceptions import BotoCoreError, ClientError

SOURCE = "self-service"
RETRY_PAUSES = (0.1, 0.4, 1.6)
"""Seconds to wait before putting a refused entry again."""
_IDS = ("profileId", "requestId")

logger = Logger(child=True)


class EventPublisher:
    def __init__(
        self, client: Any, bus_name: str, metrics_namespace: str, *, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self._client = client
        self._bus = bus_name
        self._sleep = sleep
        self._namespace = metrics_namespace

    def publish(self, detail_type: str, detail: dict[str, Any]) -> bool:
        """Put one event on the bus; False (logged and counted) when the bus kept refusing it."""
        entry = {"Source": SOURCE, "DetailType": detail_type, "Detail": json.dumps(detail, default=str)}
        error = ""
        for pause in (0.0, *RETRY_PAUSES):
            if pause:
                self._sleep(pause)
            try:
                response = self._client.put_events(Entries=[{**entry, "EventBusName": self._bus}])
            except (ClientError, BotoCoreError) as failure:  # the SDK has retried what it retries
                error = failure.response["Error"].get("Code", "") if isinstance(failure, ClientError) else "network"
                break
            if not response.get("FailedEntryCount"):
                return True
            error = str(response["Entries"][0].get("ErrorCode", ""))
        ids = {name: detail[name] for name in _IDS if name in detail}
        logger.error("event not published", extra={"detail_type": detail_type, "error_code": error, **ids})
        with single_metric(name="EventPublishFailed", unit=MetricUnit.Count, value=1, namespace=self._namespace):
            pass  # flushed when the block ends; the service dimension comes with it
        return False
