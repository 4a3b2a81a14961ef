"""Customer service closes the loop: a request submitted on the page is listed by the API, gets a
reply and is closed; the customer sees both on the page and by email, the history has each step, and
closing it starts the event review (as a ServiceRequestClosed from an outside system does)."""

from __future__ import annotations

import email
import json
import re
import threading
from email.policy import default

from moto.events.models import EventsBackend

from devstack.demo import seed_demo_profiles
from selfservice.settings import DEVELOPMENT_TOKEN_SECRET
from selfservice.tokens import Purpose, TokenSigner
from tests.integration.conftest import StateMachineStack
from tests.integration.test_api_profiles import listen_to_our_events, received_events

EVENT = "EventReviewStateMachine"


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def sign_in(stack, profile_id: str) -> None:
    token = TokenSigner([DEVELOPMENT_TOKEN_SECRET]).issue(profile_id, 0, Purpose.MANAGE)
    assert stack.client.get(f"/link?token={token}").status_code == 303


def submit(stack, message: str, kind: str = "question") -> None:
    html = stack.client.get("/requests").get_data(as_text=True)
    sent = stack.client.post("/requests", data={"csrf": csrf_of(html), "type": kind, "message": message})
    assert sent.status_code == 303


def mails_to(stack, address: str) -> list:
    found = [email.message_from_string(m.raw_data, policy=default) for m in stack.sent_emails()]
    return [m for m in found if m["To"] == address]


def customer(name: str) -> dict:
    return next(e for e in seed_demo_profiles() if e["email"] == name)


def open_requests(stack, message: str) -> list[dict]:
    """The open requests with ``message`` (the demo data has requests of its own)."""
    items = stack.request("GET", "/api/requests", query={"limit": "100"}).json["items"]
    return [item for item in items if item["message"] == message]


def test_a_request_is_listed_answered_and_closed_and_the_customer_sees_each_step(machines: StateMachineStack):
    stack = machines.stack
    anna = customer("anna.schmidt@example.com")
    sign_in(stack, anna["profile_id"])
    submit(stack, "Bitte ändern Sie meine Anschrift.", "address_change")

    listed = stack.request("GET", "/api/requests", query={"status": "open"})
    assert listed.status == 200, listed.text
    assert listed.json["next"] is None
    [request] = open_requests(stack, "Bitte ändern Sie meine Anschrift.")
    assert (request["profileId"], request["type"], request["status"]) == (anna["profile_id"], "address_change", "open")
    assert request["message"] == "Bitte ändern Sie meine Anschrift."
    assert request["replies"] == []
    path = f"/api/requests/{request['id']}"

    replied = stack.request("PATCH", path, {"status": "in_progress", "reply": "Wir kümmern uns darum."})
    assert replied.status == 200, replied.text
    assert replied.json["status"] == "in_progress"
    assert [r["text"] for r in replied.json["replies"]] == ["Wir kümmern uns darum."]
    page = stack.client.get("/requests").get_data(as_text=True)
    assert "Wir kümmern uns darum." in page
    assert open_requests(stack, "Bitte ändern Sie meine Anschrift.") == [], "in progress now"

    closed = stack.request("PATCH", path, {"status": "closed"}, headers={"If-Match": replied.headers["ETag"]})
    assert closed.status == 200, closed.text
    assert stack.request("GET", path).json["status"] == "closed"
    page = stack.client.get("/requests").get_data(as_text=True)
    assert ">erledigt<" in page
    assert stack.request("PATCH", path, {"reply": "Noch etwas"}).status == 409, "a closed request stays closed"

    # the emails: the service mailbox got the request, the customer a reply and the closing
    [reply_mail, closing_mail] = mails_to(stack, "anna.schmidt@example.com")
    assert "Wir kümmern uns darum." in reply_mail.get_body(("plain",)).get_content()
    assert closing_mail["Subject"] == "Ihre Anfrage ist abgeschlossen"
    assert "next=/requests" in closing_mail.get_body(("plain",)).get_content()
    history = stack.request("GET", f"/api/profiles/{anna['profile_id']}/history").json["entries"]
    steps = [(e["kind"], e["detail"].get("status")) for e in history if e["kind"].startswith("request_")]
    assert steps == [("request_updated", "closed"), ("request_updated", "in_progress"), ("request_submitted", None)]

    # closing it started the event review for the customer (not due here: nothing is sent)
    [review] = machines.wait_all(EVENT)
    assert review.status == "SUCCEEDED"
    assert review.output["profileId"] == anna["profile_id"]


def test_request_events_made_while_the_bus_refuses_arrive_later_and_the_review_still_runs(
    machines: StateMachineStack, monkeypatch
):
    """The outbox keeps the request events of a refusing bus; once it accepts, they arrive in order
    and the closing still starts its review."""
    stack = machines.stack
    original, bus = EventsBackend.put_events, {"refusing": True}

    def refusing_for_a_while(self, entries):
        if bus["refusing"]:
            return [{"ErrorCode": "ThrottlingException", "ErrorMessage": "Rate exceeded"} for _ in entries]
        return original(self, entries)

    sqs, queue_url = listen_to_our_events(stack)
    monkeypatch.setattr(EventsBackend, "put_events", refusing_for_a_while)
    ben = customer("ben.miller@example.com")
    sign_in(stack, ben["profile_id"])
    submit(stack, "Ist meine Bestellung unterwegs?")
    [request] = open_requests(stack, "Ist meine Bestellung unterwegs?")
    path = f"/api/requests/{request['id']}"
    assert stack.request("PATCH", path, {"reply": "Ja, seit heute."}).status == 200
    assert stack.request("PATCH", path, {"status": "closed"}).status == 200
    stack.runtime.drain()
    assert received_events(sqs, queue_url) == ([], []), "nothing reached the bus"
    assert machines.executions(EVENT) == [], "so no review yet"

    bus["refusing"] = False
    stack.runtime.drain()
    _bodies, kept = received_events(sqs, queue_url)
    ours = [event for event in kept if event["detail"].get("requestId") == request["id"]]
    assert [event["detail-type"] for event in ours] == ["RequestSubmitted", "RequestUpdated", "RequestClosed"]
    assert "Ist meine Bestellung unterwegs?" not in json.dumps(kept), "the message never goes onto the bus"
    [review] = machines.wait_all(EVENT)
    assert review.status == "SUCCEEDED"
    assert review.output["profileId"] == ben["profile_id"]


def test_an_outside_service_requests_closed_event_closes_the_stored_request(machines: StateMachineStack):
    stack = machines.stack
    clara = customer("clara.weber@example.com")
    sign_in(stack, clara["profile_id"])
    submit(stack, "Wann kommt mein Paket?")
    [request] = open_requests(stack, "Wann kommt mein Paket?")
    occurred = "2026-11-30T10:00:00+00:00"
    detail = {"requestId": request["id"], "email": "clara.weber@example.com", "occurredAt": occurred}
    machines.put_event("customer-service", "ServiceRequestClosed", detail)
    executions = machines.wait_all(EVENT)
    assert all(e.status == "SUCCEEDED" for e in executions)
    # the outside event and the closing it caused are one review, not two
    assert len({e.output["profileId"] for e in executions}) == 1
    assert stack.request("GET", f"/api/requests/{request['id']}").json["status"] == "closed"
    subjects = [mail["Subject"] for mail in mails_to(stack, "clara.weber@example.com")]
    assert subjects.count("Ihre Anfrage ist abgeschlossen") == 1
    # Clara's profile is due for a review: the one review the closing started asks her once.
    assert subjects.count("Sind Ihre Angaben noch aktuell?") == 1


def test_of_two_concurrent_changes_one_wins(stack):
    anna = customer("anna.schmidt@example.com")
    sign_in(stack, anna["profile_id"])
    submit(stack, "Eine Frage")
    [request] = open_requests(stack, "Eine Frage")
    path = f"/api/requests/{request['id']}"
    etag = stack.request("GET", path).headers["ETag"]
    barrier = threading.Barrier(2)
    answers = []

    def reply(text: str) -> None:
        barrier.wait()
        answers.append(stack.request("PATCH", path, {"reply": text}, headers={"If-Match": etag}).status)

    threads = [threading.Thread(target=reply, args=(text,)) for text in ("Antwort A", "Antwort B")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [200, 412]
    assert len(stack.request("GET", path).json["replies"]) == 1


def test_the_list_pages_oldest_first_without_a_scan_and_refuses_bad_input(stack):
    anna = customer("anna.schmidt@example.com")
    sign_in(stack, anna["profile_id"])
    for number in range(7):
        submit(stack, f"Frage {number}", "question" if number % 2 else "complaint")
    seen, cursor = [], None
    while True:
        query = {"status": "open", "limit": "3", **({"cursor": cursor} if cursor else {})}
        page = stack.request("GET", "/api/requests", query=query).json
        seen += [item["message"] for item in page["items"] if item["message"].startswith("Frage ")]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == [f"Frage {number}" for number in range(7)]
    complaints = stack.request("GET", "/api/requests", query={"type": "complaint", "limit": "100"}).json["items"]
    assert [item["message"] for item in complaints if item["message"].startswith("Frage ")] == [
        "Frage 0",
        "Frage 2",
        "Frage 4",
        "Frage 6",
    ]
    assert {item["type"] for item in complaints} == {"complaint"}
    assert stack.request("GET", "/api/requests", query={"status": "lost"}).status == 422
    assert stack.request("GET", "/api/requests", query={"cursor": "not-a-cursor"}).status == 422
    assert stack.request("GET", f"/api/requests/{'0' * 32}-{'0' * 16}").status == 404
    [first, *_] = open_requests(stack, "Frage 0")
    path = f"/api/requests/{first['id']}"
    assert stack.request("PATCH", path, {"status": "open"}).status == 422
    assert stack.request("PATCH", path, {"reply": ""}).status == 422
    assert stack.request("PATCH", path, {"reply": "   "}).status == 422
    assert stack.request("PATCH", path, {}).status == 422
    assert stack.request("GET", path).json["replies"] == [], "nothing stored"
