"""Events this product puts on the bus (source ``self-service``) for other systems to react to."""

from __future__ import annotations

import json
from typing import Any

SOURCE = "self-service"


class EventPublishError(Exception):
    """EventBridge refused an entry."""


class EventPublisher:
    def __init__(self, client: Any, bus_name: str) -> None:
        self._client = client
        self._bus = bus_name

    def publish(self, detail_type: str, detail: dict[str, Any]) -> None:
        response = self._client.put_events(
            Entries=[
                {
                    "Source": SOURCE,
                    "DetailType": detail_type,
                    "Detail": json.dumps(detail, default=str),
                    "EventBusName": self._bus,
                }
            ]
        )
        if response.get("FailedEntryCount"):
            raise EventPublishError(str(response["Entries"][0].get("ErrorCode")))
