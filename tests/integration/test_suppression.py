"""Bounces and complaints from SES (via EventBridge) suppress the address; marketing then skips it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from devstack.demo import seed_demo_profiles
from selfservice.bootstrap import wiring
from selfservice.domain.models import Source, address_hash
from selfservice.mail import EmailRenderer
from selfservice.settings import get_settings
from tests.integration.conftest import StateMachineStack

EVENTS = Path(__file__).resolve().parents[1] / "events"


def put_ses_event(machines: StateMachineStack, name: str) -> None:
    event = json.loads((EVENTS / name).read_text())
    response = machines.stack.aws("events").put_events(
        Entries=[{"Source": event["source"], "DetailType": event["detail-type"], "Detail": json.dumps(event["detail"])}]
    )
    assert response["FailedEntryCount"] == 0
    machines.stack.runtime.drain(60)


def history(machines: StateMachineStack, profile_id: str) -> list[dict[str, Any]]:
    return machines.stack.request("GET", f"/api/profiles/{profile_id}/history").json["entries"]


def test_hard_bounce_suppresses_the_address_and_the_next_marketing_email_is_skipped(machines):
    demo = {entry["email"]: entry for entry in seed_demo_profiles()}
    clara = demo["clara.weber@example.com"]
    put_ses_event(machines, "ses_hard_bounce.json")

    profile = machines.stack.request("GET", f"/api/profiles/{clara['profile_id']}").json
    assert profile["suppressed"] is True
    suppression = [i for i in machines.stack.items() if i["pk"]["S"] == f"SUPPRESSED#{address_hash(profile['email'])}"]
    assert len(suppression) == 1
    assert suppression[0]["reason"]["S"] == "hard_bounce"
    assert "clara" not in json.dumps(suppression), "the list keeps only a hash"
    assert history(machines, clara["profile_id"])[0]["kind"] == "address_suppressed"

    # The next marketing email to her: the purchase-triggered review skips it and says why.
    machines.put_event(
        "shop",
        "PurchaseCompleted",
        {"orderId": "o-77", "email": "clara.weber@example.com", "occurredAt": "2026-11-20T10:00:00Z"},
    )
    [execution] = machines.wait_all("EventReviewStateMachine")
    assert execution.status == "SUCCEEDED"
    assert machines.stack.sent_emails() == []
    # And any marketing send through the mailer is skipped and logged as skipped.
    service = wiring(get_settings())
    stored = service.repository.get(clara["profile_id"])
    email = EmailRenderer(get_settings().content_dir).render(
        "self_service_link", "de", marketing=True, link="x", valid_days=1, first_name="", recipient="r", company="c"
    )
    outcome = service.mailer.send(stored, email, Source.SYSTEM, unsubscribe_url="http://127.0.0.1:3000/u")
    assert outcome.skipped_reason == "suppressed"
    skipped = history(machines, clara["profile_id"])[0]
    assert skipped["kind"] == "email_skipped"
    assert skipped["detail"]["reason"] == "suppressed"
    assert machines.stack.sent_emails() == []


def test_complaint_suppresses_and_soft_bounce_does_not(machines):
    seed_demo_profiles()
    put_ses_event(machines, "ses_complaint.json")
    put_ses_event(machines, "ses_soft_bounce.json")
    david = machines.stack.request("GET", "/api/profiles", query={"email": "david.jones@example.com"}).json
    anna = machines.stack.request("GET", "/api/profiles", query={"email": "anna.schmidt@example.com"}).json
    assert david["suppressed"] is True
    assert anna["suppressed"] is False


def test_a_malformed_feedback_event_lands_in_the_dead_letter_queue(machines):
    seed_demo_profiles()
    before = machines.stack.items()
    put_ses_event(machines, "ses_malformed.json")
    queue = machines.stack.resources.refs["SesFeedbackDeadLetterQueue"]
    sqs = machines.stack.aws("sqs")
    url = (
        queue
        if str(queue).startswith("http")
        else sqs.get_queue_url(QueueName=str(queue).rsplit("/", 1)[-1])["QueueUrl"]
    )
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    assert len(messages) == 1
    assert machines.stack.items() == before, "nothing stored from a malformed event"
