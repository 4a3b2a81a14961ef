"""Review campaigns in the local stack as `make run` starts it: the console's "emit shop purchase"
and "run periodic review now", and the same through the AWS endpoint (what the README shows
with the aws CLI)."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import requests

PERIODIC_ARN = "arn:aws:states:eu-central-1:123456789012:stateMachine:selfservice-periodic-review-dev"
EVENT_ARN = "arn:aws:states:eu-central-1:123456789012:stateMachine:selfservice-event-review-dev"


def executions(local_stack: Any, arn: str, count: int, timeout: float = 90) -> list[dict[str, Any]]:
    """The state machine's executions once ``count`` of them have finished."""
    sfn = local_stack.client("stepfunctions")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listed = sfn.list_executions(stateMachineArn=arn)["executions"]
        if len(listed) >= count and all(e["status"] != "RUNNING" for e in listed):
            return [sfn.describe_execution(executionArn=e["executionArn"]) for e in listed]
        time.sleep(0.2)
    raise AssertionError(f"{count} execution(s) of {arn} did not finish in time")


def review_emails(local_stack: Any) -> dict[str, dict[str, Any]]:
    outbox = requests.get(f"{local_stack.http}/_dev/api/outbox", timeout=10).json()
    return {email["to"][0]: email for email in outbox if "List-Unsubscribe" in email["headers"]}


def test_console_purchase_then_periodic_run_mail_each_due_customer_once(local_stack):
    console = f"{local_stack.http}/_dev/"
    page = requests.get(console, timeout=10).text
    assert "Run periodic review now" in page
    assert "Emit shop purchase" in page

    # A purchase of a customer whose profile has gaps: reviewed right away locally (delay 0).
    emitted = requests.post(f"{console}api/purchase", json={"email": "ben.miller@example.com"}, timeout=10)
    assert emitted.status_code == 200
    [event_run] = executions(local_stack, EVENT_ARN, 1)
    assert event_run["status"] == "SUCCEEDED"
    assert json.loads(event_run["output"])["outcome"] == "sent"
    assert set(review_emails(local_stack)) == {"ben.miller@example.com"}

    # The periodic run: the other due demo customers; Ben is in his cooldown, the rest is not due,
    # paused or unconfirmed.
    started = requests.post(f"{console}api/periodic", timeout=10).json()["executionArns"]
    assert len(started) == 1
    [periodic_run] = executions(local_stack, PERIODIC_ARN, 1)
    assert periodic_run["status"] == "SUCCEEDED"
    summary = json.loads(periodic_run["output"])
    assert (summary["sent"], summary["failed"]) == (2, 0)
    # The console says what each execution did.
    page = requests.get(console, timeout=10).text
    assert f"due {summary['due']}, sent 2, failed 0" in page
    assert "<td>sent</td>" in page, "the event review's outcome is not on the console"
    emails = review_emails(local_stack)
    assert set(emails) == {"ben.miller@example.com", "clara.weber@example.com", "eva.fischer@example.com"}
    clara = emails["clara.weber@example.com"]
    assert clara["subject"] == "Sind Ihre Angaben noch aktuell?"
    assert any("next=/profile%3Ffocus%3Dstreet,postal_code,city" in link for link in clara["links"])
    assert any(link.endswith("&next=/review") for link in clara["links"])

    # A purchase put on the bus through the AWS endpoint (as the README's aws CLI does), twice, by a
    # customer whose profile is complete and fresh: both executions end well, nothing is sent.
    yesterday = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    detail = {"orderId": "o-e2e", "email": "anna.schmidt@example.com", "occurredAt": yesterday.isoformat()}
    entry = {"EventBusName": "selfservice-dev", "Source": "shop", "DetailType": "PurchaseCompleted"}
    events = local_stack.client("events")
    for _ in range(2):
        assert events.put_events(Entries=[{**entry, "Detail": json.dumps(detail)}])["FailedEntryCount"] == 0
    finished = executions(local_stack, EVENT_ARN, 3)
    assert all(run["status"] == "SUCCEEDED" for run in finished)
    assert len(review_emails(local_stack)) == 3
