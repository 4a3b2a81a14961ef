"""Enrichment of the outbox pipe: the events the ledger entries carry, as the bus gets them.

The pipe (``OutboxPipe`` in template.yaml) reads the table's stream, keeps the ledger inserts that
carry an event and hands them over in batches; this returns, for each record in order, its detail
type and detail (which includes the entry's id). The detail is stored as JSON text: a stream image
is typed (``{"S": ...}``) and an input template cannot untype a map whose keys vary (``changes``),
while a template that passes the text on would put a string, not an object, on the bus.

No I/O: a malformed record fails the batch, which the pipe retries and then hands to its
dead-letter queue.
"""

import json
from typing import Any


def handler(event: list[dict[str, Any]], context: Any) -> list[dict[str, Any]]:
    images = (record["dynamodb"]["NewImage"] for record in event)
    return [
        {"detailType": image["event_type"]["S"], "detail": json.loads(image["event_detail"]["S"])} for image in images
    ]
