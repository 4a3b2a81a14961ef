"""The webhook: this product's change events reach a system outside AWS through an EventBridge API
destination (template parameters WebhookEndpoint, WebhookAuthType, WebhookSecretName, WebhookEventTypes).
Locally the console lists what the webhook would get, and ``DEVSTACK_WEBHOOK_URL`` receives it."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from tests.e2e.conftest import LocalStack, start_local_stack, stop_local_stack

API_KEY = "k-7f3a9c"  # what the operator put into the Secrets Manager secret


class Receiver:
    """The other system's endpoint: keeps what it got, answers ``status``."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {name.lower(): value for name, value in self.headers.items()}
                receiver.calls.append({"headers": headers, "event": json.loads(body)})
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/selfservice"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.calls) < count and time.monotonic() < deadline:
            time.sleep(0.1)
        return self.calls


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.server.shutdown()


@pytest.fixture(scope="module")
def webhook_stack(receiver: Receiver) -> Iterator[LocalStack]:
    stack = start_local_stack(
        {
            "DEVSTACK_SEED": "0",
            "DEVSTACK_PARAM_WebhookEndpoint": "https://crm.example.com/hooks/selfservice",
            "DEVSTACK_PARAM_WebhookSecretName": "selfservice/webhook",
            "DEVSTACK_PARAM_WebhookEventTypes": "ProfileChanged,Unsubscribed",
            "DEVSTACK_WEBHOOK_URL": receiver.url,
        }
    )
    stack.client("secretsmanager").create_secret(
        Name="selfservice/webhook", SecretString=json.dumps({"apiKey": API_KEY})
    )
    yield stack
    stop_local_stack(stack)


def test_changes_reach_the_webhook_with_its_credentials_and_other_event_types_do_not(webhook_stack, receiver):
    created = requests.post(f"{webhook_stack.http}/api/profiles", json={"email": "wim@example.com"}, timeout=10)
    assert created.status_code == 201
    profile_id = created.json()["id"]
    for city in ("Jena", "Gera"):
        changed = requests.patch(
            f"{webhook_stack.http}/api/profiles/{profile_id}", json={"fields": {"city": city}}, timeout=10
        )
        assert changed.status_code == 200
    detail = {"requestId": "r", "profileId": profile_id, "type": "question", "entryId": "e"}
    other = {"Source": "self-service", "DetailType": "RequestSubmitted", "EventBusName": "selfservice-dev",
             "Detail": json.dumps(detail)}  # fmt: skip
    assert webhook_stack.client("events").put_events(Entries=[other])["FailedEntryCount"] == 0

    calls = receiver.wait_for(2)
    time.sleep(1.5)  # RequestSubmitted is not among WebhookEventTypes: it must not arrive meanwhile
    assert [call["event"]["detail-type"] for call in receiver.calls] == ["ProfileChanged", "ProfileChanged"]
    assert all(call["headers"]["x-api-key"] == API_KEY for call in calls), "the connection's credentials"
    cities = [call["event"]["detail"]["changes"]["fields.city"]["after"] for call in calls]
    assert cities == ["Jena", "Gera"]
    assert all(call["event"]["source"] == "self-service" for call in calls)
    assert all(call["event"]["detail"]["profileId"] == profile_id for call in calls)
    assert len({call["event"]["detail"]["entryId"] for call in calls}) == 2, "each carries its ledger entry id"
    assert "wim@example.com" not in json.dumps(calls)

    console = requests.get(f"{webhook_stack.http}/_dev/api/webhooks", timeout=10).json()
    assert [(item["endpoint"], item["status"]) for item in console][:2] == [
        ("https://crm.example.com/hooks/selfservice", 200)
    ] * 2
    assert API_KEY not in json.dumps(console), "the console names the header, never the key"
    page = requests.get(f"{webhook_stack.http}/_dev/", timeout=10).text
    assert "https://crm.example.com/hooks/selfservice" in page


def test_an_event_the_webhook_refuses_waits_in_its_dead_letter_queue(webhook_stack, receiver):
    created = requests.post(f"{webhook_stack.http}/api/profiles", json={"email": "ria@example.com"}, timeout=10)
    profile_id = created.json()["id"]
    before = len(receiver.calls)
    receiver.status = 400  # the other system refuses (e.g. its contract changed)
    try:
        answer = requests.patch(
            f"{webhook_stack.http}/api/profiles/{profile_id}", json={"fields": {"city": "Suhl"}}, timeout=10
        )
        assert answer.status_code == 200, "the change itself is saved whatever the webhook says"
        receiver.wait_for(before + 1)
    finally:
        receiver.status = 200
    sqs = webhook_stack.client("sqs")
    queue = sqs.get_queue_url(QueueName="selfservice-webhook-dlq-dev")["QueueUrl"]
    deadline, messages = time.monotonic() + 10, []
    while not messages and time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
    [message] = messages
    event = json.loads(message["Body"])
    assert event["detail-type"] == "ProfileChanged"
    assert event["detail"]["profileId"] == profile_id


def test_basic_credentials_are_sent_as_http_basic_does():
    from devstack.webhooks import _authorization

    basic = {"BasicAuthParameters": {"Username": "crm", "Password": "s3cret"}}
    assert _authorization(basic, str) == ("Authorization", "Basic Y3JtOnMzY3JldA==")
