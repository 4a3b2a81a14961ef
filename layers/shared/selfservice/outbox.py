"""The outbox: the event a ledger entry carries (``event_type``, ``event_detail``), as the bus gets it.

The outbox pipe's enrichment turns stream images into bus events with :func:`bus_event`. When the
pipe gave up on a batch (the bus refused for 6 hours: ``OutboxDeadLetterAlarm``), the events are
still in their ledger entries; :func:`replay` puts those of a time window on the bus again (a
consumer drops what it had by ``entryId``). Run it as an operator::

    python -m selfservice.outbox --table selfservice-prod-ProfileTable --bus selfservice-prod \\
        --since 2026-12-01T08:00:00Z --until 2026-12-01T15:00:00Z [--dry-run]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from collections.abc import Iterator, Mapping
from typing import Any

SOURCE = "self-service"
PUT_EVENTS_BATCH = 10
PUT_ATTEMPTS = 5


def bus_event(image: Mapping[str, Any]) -> dict[str, Any]:
    """``{"detailType", "detail"}`` of a ledger item in DynamoDB's typed JSON (a stream image or a scanned
    item). The detail is stored as JSON text: a template could not untype ``changes``, a map whose keys vary."""
    return {"detailType": image["event_type"]["S"], "detail": json.loads(image["event_detail"]["S"])}


def carried_events(dynamodb: Any, table: str, since: dt.datetime, until: dt.datetime) -> Iterator[dict[str, Any]]:
    """The events of the ledger entries written in [since, until), oldest first (a scan: an operator's tool)."""
    from selfservice.storage import ledger_sort_key  # (not at import: the pipe's enrichment needs no storage)

    found, request = (
        [],
        {
            "TableName": table,
            "FilterExpression": "item_type = :ledger AND attribute_exists(event_type) AND sk BETWEEN :since AND :until",
            "ExpressionAttributeValues": {
                ":ledger": {"S": "ledger"},
                ":since": {"S": ledger_sort_key(since)},
                ":until": {"S": ledger_sort_key(until - dt.timedelta(microseconds=1)) + "~"},
            },
        },
    )
    for page in dynamodb.get_paginator("scan").paginate(**request):
        found += page["Items"]
    for item in sorted(found, key=lambda item: item["sk"]["S"]):
        yield bus_event(item)


def replay(dynamodb: Any, events: Any, table: str, bus: str, since: dt.datetime, until: dt.datetime) -> int:
    """Put the events of the window on the bus again; returns how many. Raises when the bus keeps
    refusing some (run it again: what arrived twice, consumers drop by ``entryId``)."""
    entries = [
        {"Source": SOURCE, "DetailType": e["detailType"], "Detail": json.dumps(e["detail"]), "EventBusName": bus}
        for e in carried_events(dynamodb, table, since, until)
    ]
    for start in range(0, len(entries), PUT_EVENTS_BATCH):
        pending = entries[start : start + PUT_EVENTS_BATCH]
        for attempt in range(PUT_ATTEMPTS):
            answers = events.put_events(Entries=pending)["Entries"]
            pending = [entry for entry, answer in zip(pending, answers, strict=True) if "ErrorCode" in answer]
            if not pending:
                break
            time.sleep(0.2 * 2**attempt)
        if pending:
            raise RuntimeError(f"the bus refused {len(pending)} events after {PUT_ATTEMPTS} attempts; run again")
    return len(entries)


def main(argv: list[str] | None = None) -> None:
    import boto3

    parser = argparse.ArgumentParser(description="Put the change events of a time window on the bus again.")
    parser.add_argument("--table", required=True)
    parser.add_argument("--bus", required=True)
    parser.add_argument("--since", required=True, type=dt.datetime.fromisoformat, help="ISO-8601 with offset")
    parser.add_argument("--until", required=True, type=dt.datetime.fromisoformat, help="ISO-8601 with offset")
    parser.add_argument("--dry-run", action="store_true", help="count the events, put none")
    args = parser.parse_args(argv)
    dynamodb = boto3.client("dynamodb")
    if args.dry_run:
        print(f"{sum(1 for _ in carried_events(dynamodb, args.table, args.since, args.until))} events in the window")
    else:
        count = replay(dynamodb, boto3.client("events"), args.table, args.bus, args.since, args.until)
        print(f"{count} events put on {args.bus}")


if __name__ == "__main__":
    main()
