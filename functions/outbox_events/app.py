"""Enrichment of the outbox pipe: the events the ledger entries carry, as the bus gets them.

The pipe (``OutboxPipe`` in template.yaml) reads the table's stream, keeps the ledger inserts that
carry an event and hands them over in batches; this returns, for each record in order, its detail
type and detail (which includes the entry's id): :func:`selfservice.outbox.bus_event`, which says
why an input template cannot do it.

No I/O: a malformed record fails the batch, which the pipe retries and then hands to its
dead-letter queue.
"""

from typing import Any

from selfservice.outbox import bus_event


def handler(event: list[dict[str, Any]], context: Any) -> list[dict[str, Any]]:
    return [bus_event(record["dynamodb"]["NewImage"]) for record in event]
