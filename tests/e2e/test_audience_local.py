"""Audiences and reported newsletters in the local stack as `make run` starts it, over HTTP and the AWS
endpoint (what the README shows with curl and the aws CLI): the demo customers' news audience, its
export file, and a NewsletterSent that shows on the customer's history page and pushes her out of
the next audience at her frequency."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import requests

EXPORT_ARN = "arn:aws:states:eu-central-1:123456789012:stateMachine:selfservice-audience-export-dev"


def audience(local_stack: Any, topic: str, channel: str = "email") -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    query = {"channel": channel, "limit": "2"}
    while True:
        answer = requests.get(f"{local_stack.http}/api/topics/{topic}/audience", params=query, timeout=30)
        assert answer.status_code == 200, answer.text
        items += answer.json()["items"]
        if answer.json()["next"] is None:
            return items
        query["cursor"] = answer.json()["next"]


def addresses(items: list[dict[str, Any]]) -> list[str]:
    return sorted(item["address"] for item in items)


def export(local_stack: Any, topic: str, channel: str = "email") -> dict[str, Any]:
    started = requests.post(
        f"{local_stack.http}/api/audience-exports", json={"topic": topic, "channel": channel}, timeout=30
    )
    assert started.status_code == 202, started.text
    # Waited for on the AWS endpoint, not by polling the API: the local stack sets the API function's
    # own environment variables process-wide while it runs, which the export's threads may read then.
    execution = f"{EXPORT_ARN.replace(':stateMachine:', ':execution:')}:{started.json()['id']}"
    sfn = local_stack.client("stepfunctions")
    deadline = time.monotonic() + 120
    while sfn.describe_execution(executionArn=execution)["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the export did not finish in time"
        time.sleep(0.3)
    return dict(requests.get(f"{local_stack.http}/api/audience-exports/{started.json()['id']}", timeout=30).json())


def test_news_audience_export_and_a_reported_newsletter(local_stack):
    demo = {entry["email"]: entry for entry in requests.get(f"{local_stack.http}/_dev/api/demo", timeout=10).json()}
    # Ben has no news; David is paused; Frank has not confirmed.
    news = audience(local_stack, "news")
    assert addresses(news) == ["anna.schmidt@example.com", "clara.weber@example.com", "eva.fischer@example.com"]
    assert addresses(audience(local_stack, "offers", "sms")) == ["+491701234567"], "Eva's confirmed number"

    done = export(local_stack, "news")
    assert (done["status"], done["count"]) == ("succeeded", 3)
    file = requests.get(done["url"], timeout=30)
    assert file.status_code == 200
    assert [json.loads(line) for line in file.text.splitlines()] == news

    # Clara gets news monthly: the newsletter reported for her is the one of this month.
    clara = demo["clara.weber@example.com"]
    sent_at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
    detail = {
        "campaignId": "e2e-december",
        "topic": "news",
        "channel": "email",
        "subject": "Unsere Neuigkeiten im Dezember",
        "sentAt": sent_at.isoformat(),
        "profileIds": [clara["profile_id"], demo["anna.schmidt@example.com"]["profile_id"]],
    }
    entry = {"EventBusName": "selfservice-dev", "Source": "newsletter", "DetailType": "NewsletterSent"}
    events = local_stack.client("events")
    for _ in range(2):  # a duplicate changes nothing
        assert events.put_events(Entries=[{**entry, "Detail": json.dumps(detail)}])["FailedEntryCount"] == 0

    deadline = time.monotonic() + 30
    while "clara.weber@example.com" in addresses(audience(local_stack, "news")):
        assert time.monotonic() < deadline, "Clara is still in the news audience after her monthly newsletter"
        time.sleep(0.3)
    assert addresses(audience(local_stack, "news")) == ["anna.schmidt@example.com", "eva.fischer@example.com"]

    session = requests.Session()
    opened = session.get(clara["link"].replace("http://127.0.0.1:3000", local_stack.http), timeout=30)
    assert opened.status_code == 200
    history = session.get(f"{local_stack.http}/history", timeout=30).text
    assert history.count("Unsere Neuigkeiten im Dezember") == 1
    assert "Weil Sie „Neuigkeiten“ gewählt haben" in history
    assert "Newsletter per E-Mail" in history
