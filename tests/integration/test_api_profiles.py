"""The JSON API the shop and customer service use, through the HTTP-API gateway, on moto."""

from __future__ import annotations

import datetime as dt
import email
import json
import threading
from email.policy import default
from urllib.parse import parse_qs, urlparse

from moto.events.models import EventsBackend

from selfservice.settings import DEVELOPMENT_TOKEN_SECRET
from selfservice.tokens import Purpose, TokenSigner


def create(stack, **body):
    answer = stack.request("POST", "/api/profiles", {"email": "kim@example.com", **body})
    assert answer.status == 201, answer.text
    return answer.json


def test_create_read_and_find_by_email(stack):
    created = create(stack, locale="en", fields={"first_name": "Kim"}, subscribe=["news"])
    assert created["email"] == "kim@example.com"
    assert created["status"] == "pending"
    assert created["version"] == 1
    assert created["fields"]["first_name"]["value"] == "Kim"
    read = stack.request("GET", f"/api/profiles/{created['id']}")
    assert read.status == 200
    assert read.headers["ETag"] == '"1"'
    assert read.json["preferences"]["topics"] == {"news": True}
    found = stack.request("GET", "/api/profiles", query={"email": "  KIM@Example.com "})
    assert found.status == 200
    assert found.json["id"] == created["id"]


# Each way of writing one address: the case of either part, Unicode composed (NFC) or decomposed (NFD),
# an international domain in Unicode or as punycode, whitespace around it.
ADDRESS = "Jörg.Müller@Bücher.de"
SAME_ADDRESS = [
    "jörg.müller@bücher.de",
    "JÖRG.MÜLLER@BÜCHER.DE",
    "jörg.müller@xn--bcher-kva.de",
    "Jo\u0308rg.Mu\u0308ller@Bu\u0308cher.de",  # NFD
    "JO\u0308RG.MU\u0308LLER@XN--BCHER-KVA.DE",
    "  Jörg.Müller@Bücher.de\t",
]


def test_every_way_of_writing_an_address_finds_the_profile_it_created(stack):
    created = create(stack, email=ADDRESS)
    assert created["email"] == "Jörg.Müller@bücher.de"  # as the customer wrote the local part, the domain normalised
    for variant in SAME_ADDRESS:
        found = stack.request("GET", "/api/profiles", query={"email": variant})
        assert found.status == 200, f"{variant!r}: {found.status} {found.text[:200]}"
        assert found.json["id"] == created["id"]
        assert found.headers["ETag"] == '"1"'


def test_no_way_of_writing_an_existing_address_creates_a_second_profile(stack):
    create(stack, email=ADDRESS)
    before = stack.items()
    for variant in SAME_ADDRESS:
        answer = stack.request("POST", "/api/profiles", {"email": variant})
        assert answer.status == 409, f"{variant!r}: {answer.status}"
    assert stack.items() == before


def test_an_address_created_in_nfd_or_punycode_is_found_in_nfc_and_unicode(stack):
    created = create(stack, email="JO\u0308RG@XN--BCHER-KVA.DE")
    assert created["email"] == "JÖRG@bücher.de"
    found = stack.request("GET", "/api/profiles", query={"email": "jörg@bücher.de"})
    assert found.status == 200
    assert found.json["id"] == created["id"]


def test_finding_by_what_is_no_address_is_a_422_naming_the_field(stack):
    create(stack)
    for not_an_address in ("kim@", "kim@@example.com", "kim example.com", "kim@example..com"):
        answer = stack.request("GET", "/api/profiles", query={"email": not_an_address})
        assert answer.status == 422, f"{not_an_address!r}: {answer.status}"
        assert answer.json["problems"] == [{"field": "email", "reason": "this is not a valid email address"}]


def test_duplicate_address_is_a_conflict_and_stores_nothing_more(stack):
    create(stack)
    before = len(stack.items())
    answer = stack.request("POST", "/api/profiles", {"email": "Kim@EXAMPLE.com"})
    assert answer.status == 409
    assert answer.json["problems"][0]["field"] == "email"
    assert len(stack.items()) == before


def test_unknown_profile_and_unknown_address_are_404(stack):
    assert stack.request("GET", f"/api/profiles/{'0' * 32}").status == 404
    assert stack.request("GET", "/api/profiles", query={"email": "nobody@example.com"}).status == 404
    assert stack.request("PATCH", f"/api/profiles/{'0' * 32}", {"locale": "en"}).status == 404


def test_patch_changes_only_what_is_sent_and_records_it(stack):
    created = create(stack, fields={"first_name": "Kim", "city": "Berlin"})
    answer = stack.request(
        "PATCH",
        f"/api/profiles/{created['id']}",
        {"fields": {"city": "Leipzig"}, "preferences": {"topics": {"news": False}, "frequency": "monthly"}},
        headers={"If-Match": '"1"'},
    )
    assert answer.status == 200, answer.text
    profile = answer.json
    assert profile["version"] == 2
    assert profile["fields"]["city"]["value"] == "Leipzig"
    assert profile["fields"]["first_name"] == created["fields"]["first_name"]
    assert profile["preferences"]["topics"] == {}, "switching off a topic that is off changes nothing"
    history = stack.request("GET", f"/api/profiles/{created['id']}/history").json["entries"]
    assert [entry["kind"] for entry in history] == ["profile_changed", "profile_created"]
    changes = {change["field"]: (change["before"], change["after"]) for change in history[0]["changes"]}
    assert changes == {
        "fields.city": ("Berlin", "Leipzig"),
        "preferences.frequency": ("as_published", "monthly"),
    }


def test_stale_version_gives_412_and_changes_nothing(stack):
    created = create(stack, fields={"city": "Berlin"})
    assert (
        stack.request("PATCH", f"/api/profiles/{created['id']}", {"fields": {"city": "Bonn"}, "version": 1}).status
        == 200
    )
    stale = stack.request("PATCH", f"/api/profiles/{created['id']}", {"fields": {"city": "Essen"}, "version": 1})
    assert stale.status == 412
    assert stale.json["error"] == "version_conflict"
    assert stack.request("GET", f"/api/profiles/{created['id']}").json["fields"]["city"]["value"] == "Bonn"


def test_two_concurrent_patches_of_the_same_version_give_one_200_and_one_412_and_lose_nothing(stack):
    created = create(stack, fields={"city": "Berlin"})
    barrier = threading.Barrier(2)
    answers = {}

    def patch(city: str) -> None:
        barrier.wait()
        answers[city] = stack.request(
            "PATCH", f"/api/profiles/{created['id']}", {"fields": {"city": city}}, headers={"If-Match": '"1"'}
        )

    threads = [threading.Thread(target=patch, args=(city,)) for city in ("Dresden", "Erfurt")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(answer.status for answer in answers.values())
    assert statuses == [200, 412]
    winner = next(city for city, answer in answers.items() if answer.status == 200)
    loser = next(city for city, answer in answers.items() if answer.status == 412)
    stored = stack.request("GET", f"/api/profiles/{created['id']}").json
    assert stored["fields"]["city"]["value"] == winner
    assert stored["version"] == 2
    # The refused writer re-reads and retries: both changes end up in the history, none is lost.
    retry = stack.request(
        "PATCH", f"/api/profiles/{created['id']}", {"fields": {"city": loser}}, headers={"If-Match": '"2"'}
    )
    assert retry.status == 200
    history = stack.request("GET", f"/api/profiles/{created['id']}/history").json["entries"]
    cities = [change["after"] for entry in history for change in entry["changes"] if change["field"] == "fields.city"]
    assert cities == [loser, winner, "Berlin"]


def test_delete_erases_every_item_and_frees_the_address(stack):
    created = create(stack, fields={"city": "Berlin"})
    stack.request("PATCH", f"/api/profiles/{created['id']}", {"locale": "en"})
    stack.request("POST", f"/api/profiles/{created['id']}/self-service-link")
    assert stack.items()
    answer = stack.request("DELETE", f"/api/profiles/{created['id']}")
    assert answer.status == 200
    # The same erasure as the privacy page's: only the address's hash stays, on the suppression list.
    kept = stack.items()
    assert [item["item_type"]["S"] for item in kept] == ["suppression"]
    assert "kim" not in json.dumps(kept).lower()
    assert stack.request("GET", f"/api/profiles/{created['id']}").status == 404
    assert stack.request("POST", "/api/profiles", {"email": "kim@example.com"}).status == 201


def test_email_change_moves_the_lookup_and_the_uniqueness_claim(stack):
    kim = create(stack)
    other = stack.request("POST", "/api/profiles", {"email": "lee@example.com"}).json
    taken = stack.request("PATCH", f"/api/profiles/{kim['id']}", {"email": "lee@example.com"})
    assert taken.status == 409
    moved = stack.request("PATCH", f"/api/profiles/{kim['id']}", {"email": "kim.new@example.com"})
    assert moved.status == 200
    assert stack.request("GET", "/api/profiles", query={"email": "kim.new@example.com"}).json["id"] == kim["id"]
    assert stack.request("GET", "/api/profiles", query={"email": "kim@example.com"}).status == 404
    assert stack.request("POST", "/api/profiles", {"email": "kim@example.com"}).status == 201
    assert other["id"] != kim["id"]


def listen_to_our_events(stack):
    """An SQS queue that receives every event this product puts on the bus (as another system would)."""
    bus = stack.resources.refs["EventBus"]
    sqs, events = stack.aws("sqs"), stack.aws("events")
    queue_url = sqs.create_queue(QueueName="listener")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="listen", EventBusName=bus, EventPattern=json.dumps({"source": ["self-service"]}))
    events.put_targets(Rule="listen", EventBusName=bus, Targets=[{"Id": "q", "Arn": queue_arn}])
    return sqs, queue_url


def test_profile_change_is_published_on_the_bus_with_before_and_after(stack):
    sqs, queue_url = listen_to_our_events(stack)
    created = create(stack, fields={"city": "Berlin"})
    stack.request("PATCH", f"/api/profiles/{created['id']}", {"fields": {"city": "Jena"}})
    [message] = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    event = json.loads(message["Body"])
    assert event["detail-type"] == "ProfileChanged"
    assert event["detail"]["profileId"] == created["id"]
    assert event["detail"]["changes"] == {"fields.city": {"before": "Berlin", "after": "Jena"}}
    assert "kim@example.com" not in message["Body"]


def received_events(sqs, queue_url):
    """Every event the listener got so far, and those a consumer that drops duplicates by entryId keeps."""
    bodies = []
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        bodies += [json.loads(message["Body"]) for message in messages]
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)],
        )
    kept = {}
    for event in bodies:
        kept.setdefault(event["detail"]["entryId"], event)
    return bodies, list(kept.values())


def test_changes_made_while_the_bus_refuses_are_all_delivered_once_it_accepts_again(stack, monkeypatch):
    """The ledger is the outbox: a refusing bus delays the events of committed changes, loses none."""
    sqs, queue_url = listen_to_our_events(stack)
    created = create(stack, fields={"city": "Berlin"})
    original = EventsBackend.put_events
    bus = {"refusing": True, "partly": True}

    def refusing_for_a_while(self, entries):
        if bus["refusing"]:
            return [{"ErrorCode": "ThrottlingException", "ErrorMessage": "Rate exceeded"} for _ in entries]
        if bus["partly"] and len(entries) > 1:  # then it takes the first entry only: the batch is put again
            bus["partly"] = False
            return [*original(self, entries[:1]), *({"ErrorCode": "InternalFailure"} for _ in entries[1:])]
        return original(self, entries)

    monkeypatch.setattr(EventsBackend, "put_events", refusing_for_a_while)
    cities = ["Jena", "Gera", "Suhl", "Erfurt"]
    for city in cities:
        answer = stack.request("PATCH", f"/api/profiles/{created['id']}", {"fields": {"city": city}})
        assert answer.status == 200, "the change is committed whatever the bus does"
    assert received_events(sqs, queue_url) == ([], [])

    bus["refusing"] = False
    stack.runtime.drain()  # the pipe's next tries: one partly refused, then the whole batch again
    stack.runtime.drain()

    bodies, kept = received_events(sqs, queue_url)
    cities_heard = [event["detail"]["changes"]["fields.city"]["after"] for event in kept]
    assert cities_heard == cities, "every change made meanwhile arrives, in order"
    assert len(bodies) > len(kept), "at least once: the bus got some entries twice, the consumer drops them"
    history = stack.request("GET", f"/api/profiles/{created['id']}/history").json
    changed = [entry for entry in history["entries"] if entry["kind"] == "profile_changed"]
    assert sorted(event["detail"]["entryId"] for event in kept) == sorted(entry["id"] for entry in changed)
    assert all("event" not in entry for entry in history["entries"]), "the history shows the entries, not the outbox"
    assert all(set(event["detail"]) == {"profileId", "version", "source", "changes", "entryId"} for event in kept)


def test_an_operator_replays_the_events_of_a_window_the_pipe_gave_up_on(stack, monkeypatch):
    """After 6 refused hours the pipe gives up on a batch (dead-letter queue); the events are still in
    their ledger entries, and the replay puts those of the window on the bus again."""
    from selfservice.outbox import carried_events, replay

    sqs, queue_url = listen_to_our_events(stack)
    earlier = create(stack, email="lee@example.com", fields={"city": "Berlin"})
    stack.request("PATCH", f"/api/profiles/{earlier['id']}", {"fields": {"city": "Halle"}})
    stack.runtime.drain()
    since = dt.datetime.now(dt.UTC)
    original = EventsBackend.put_events
    monkeypatch.setattr(
        EventsBackend, "put_events", lambda self, entries: [{"ErrorCode": "Throttled"} for _ in entries]
    )
    created = create(stack, fields={"city": "Berlin"})
    for city in ("Jena", "Gera", "Suhl"):
        stack.request("PATCH", f"/api/profiles/{created['id']}", {"fields": {"city": city}})
    until = dt.datetime.now(dt.UTC)
    monkeypatch.setattr(EventsBackend, "put_events", original)
    received_events(sqs, queue_url)  # (what the first profile's change put on the bus before)

    dynamodb, table, bus = stack.aws("dynamodb"), stack.table, stack.resources.refs["EventBus"]
    assert len(list(carried_events(dynamodb, table, since, until))) == 3, "the window holds only its changes"
    assert replay(dynamodb, stack.aws("events"), table, bus, since, until) == 3
    stack.runtime.drain()  # the pipe's own retry arrives too, later: the consumer drops by entryId
    bodies, kept = received_events(sqs, queue_url)
    assert len(bodies) == 6
    assert [event["detail"]["changes"]["fields.city"]["after"] for event in kept] == ["Jena", "Gera", "Suhl"]
    history = stack.request("GET", f"/api/profiles/{created['id']}/history").json["entries"]
    changed = sorted(entry["id"] for entry in history if entry["kind"] == "profile_changed")
    assert sorted(event["detail"]["entryId"] for event in kept) == changed


def test_a_failed_change_puts_no_event_on_the_bus(stack):
    sqs, queue_url = listen_to_our_events(stack)
    created = create(stack, fields={"city": "Berlin"})
    stale = stack.request(
        "PATCH", f"/api/profiles/{created['id']}", {"fields": {"city": "Jena"}}, headers={"If-Match": '"99"'}
    )
    assert stale.status == 412
    bodies, _kept = received_events(sqs, queue_url)
    assert [event["detail-type"] for event in bodies] == []


def test_self_service_link_email_read_back_from_ses(stack):
    created = create(stack, locale="en", fields={"first_name": "Kim"})
    answer = stack.request("POST", f"/api/profiles/{created['id']}/self-service-link")
    assert answer.status == 202
    assert answer.json["sent"] is True
    [sent] = stack.sent_emails()
    message = email.message_from_bytes(
        sent.raw_data.encode() if isinstance(sent.raw_data, str) else sent.raw_data, policy=default
    )
    assert message["To"] == "kim@example.com"
    assert message["Subject"] == "Your link to your preferences"
    assert message["Content-Language"] == "en"
    assert message["Feedback-ID"].startswith("self_service_link:en:")
    assert message["List-Unsubscribe"] is None, "a transactional email has no unsubscribe header"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "Hello Kim" in text
    assert "Hello Kim" in html
    link = next(word for word in text.split() if word.startswith("http://127.0.0.1:3000/link?token="))
    assert f'href="{link}"' in html
    token = parse_qs(urlparse(link).query)["token"][0]
    assert TokenSigner([DEVELOPMENT_TOKEN_SECRET]).verify(token, Purpose.MANAGE) == (created["id"], 0)
    history = stack.request("GET", f"/api/profiles/{created['id']}/history").json["entries"]
    assert history[0]["kind"] == "email_sent"
    assert history[0]["detail"]["subject"] == "Your link to your preferences"


def test_german_profile_gets_a_german_email(stack):
    created = create(stack, locale="de", fields={"first_name": "Jörg"})
    stack.request("POST", f"/api/profiles/{created['id']}/self-service-link")
    [sent] = stack.sent_emails()
    raw = sent.raw_data.encode() if isinstance(sent.raw_data, str) else sent.raw_data
    message = email.message_from_bytes(raw, policy=default)
    assert message["Subject"] == "Ihr Link zu Ihren Einstellungen"
    assert "Hallo Jörg" in message.get_body(("plain",)).get_content()


def test_openapi_document_describes_the_routes(stack):
    document = stack.request("GET", "/api/openapi.json").json
    assert document["openapi"].startswith("3.")
    assert {
        "/api/profiles",
        "/api/profiles/{profile_id}",
        "/api/profiles/{profile_id}/history",
        "/api/profiles/{profile_id}/self-service-link",
    } <= set(document["paths"])
    assert "patch" in document["paths"]["/api/profiles/{profile_id}"]
