"""A pause that comes back on its own, told: the daily pause-ending note, on moto with the template's
function, index and the real pages behind its links."""

from __future__ import annotations

import datetime as dt
import email
import json
import re
from email.message import EmailMessage
from email.policy import default
from typing import Any

import pytest

from selfservice.domain.models import address_hash
from tests.integration.test_imports import GIVEN


def subscriber(stack, address: str, locale: str = "de", topics: list[str] | None = None) -> dict[str, Any]:
    row = {"email": address, "locale": locale, "topics": topics or ["news", "events"]}
    row["consent"] = {"givenAt": GIVEN, "source": "shop checkout", "version": "2026-01"}
    assert stack.request("POST", "/api/imports", {"profiles": [row]}).json["created"] == 1
    return stack.request("GET", "/api/profiles", query={"email": address}).json


def pause(stack, profile: dict[str, Any], until: dt.datetime) -> dict[str, Any]:
    answer = stack.request(
        "PATCH", f"/api/profiles/{profile['id']}", {"preferences": {"paused_until": until.isoformat()}}
    )
    assert answer.status == 200, answer.text
    return answer.json


def run_notes(stack) -> dict[str, int]:
    """What the schedule does once a day: invoke the function."""
    name = stack.resources.functions["PauseNotesFunction"].name
    answer = stack.aws("lambda").invoke(FunctionName=name, Payload=b"{}")
    assert "FunctionError" not in answer, answer["Payload"].read()
    return json.loads(answer["Payload"].read())


def notes(stack) -> list[EmailMessage]:
    read = [email.message_from_string(m.raw_data, policy=default) for m in stack.sent_emails()]
    return [message for message in read if message["Feedback-ID"].startswith("pause_ending:")]


def index_entries(stack) -> list[str]:
    """Who is in the sparse PauseEnding index, over all shards."""
    dynamodb, found = stack.aws("dynamodb"), []
    for shard in range(16):
        items = dynamodb.query(
            TableName=stack.table,
            IndexName="PauseEnding",
            KeyConditionExpression="pause_shard = :s",
            ExpressionAttributeValues={":s": {"S": f"PAUSE#{shard:02d}"}},
        )["Items"]
        found += [item["pk"]["S"].removeprefix("PROFILE#") for item in items]
    return found


@pytest.mark.parametrize("language", ["de", "en"])
def test_the_note_comes_a_few_days_before_the_pause_ends_and_only_once(stack, clock, language):
    kim = subscriber(stack, "kim@example.com", language)
    end = clock.now + dt.timedelta(days=10)
    pause(stack, kim, end)
    assert run_notes(stack) == {}  # seven days before the end, nothing is due yet
    clock.advance(days=6, hours=23)
    assert run_notes(stack) == {}
    clock.advance(hours=2)  # three days (the catalog's reminder_days_before) before the end
    assert run_notes(stack) == {"sent": 1}
    [note] = notes(stack)
    assert note["To"] == "kim@example.com"
    assert note["Content-Language"] == language
    assert note["List-Unsubscribe"] is None, "a service note, not a newsletter"
    date = {"de": "11. Dezember 2026", "en": "December 11, 2026"}[language]
    subject = {"de": f"Ihre Newsletter-Pause endet am {date}", "en": f"Your newsletter pause ends on {date}"}
    assert note["Subject"] == subject[language]
    text = note.get_body(("plain",)).get_content()
    assert {"de": "Neuigkeiten, Veranstaltungen", "en": "News, Events"}[language] in text
    # Once per pause: the next days send nothing more.
    clock.advance(days=1)
    assert run_notes(stack) == {}
    assert len(notes(stack)) == 1
    profile = stack.request("GET", f"/api/profiles/{kim['id']}").json
    history = stack.request("GET", f"/api/profiles/{kim['id']}/history").json["entries"]
    [sent] = [entry for entry in history if entry["detail"].get("email_type") == "pause_ending"]
    assert sent["kind"] == "email_sent"
    assert sent["detail"]["paused_until"] == end.isoformat()
    assert profile["preferences"]["paused_until"] == end.isoformat().replace("+00:00", "Z")
    # Not counted as a newsletter against the chosen frequency.
    from selfservice import bootstrap

    assert bootstrap.adapters().repository.get(kim["id"]).marketing_emails_at == []


def test_only_paused_subscribers_who_still_receive_something_get_one(stack, clock):
    paused = subscriber(stack, "paused@example.com")
    unpaused = subscriber(stack, "unpaused@example.com")
    left = subscriber(stack, "left@example.com", topics=["news"])
    bounced = subscriber(stack, "bounced@example.com")
    for profile in (paused, left, bounced):
        pause(stack, profile, clock.now + dt.timedelta(days=5))
    shop = stack.request("POST", "/api/profiles", {"email": "shop@example.com"}).json  # no subscription
    stack.request("PATCH", f"/api/profiles/{left['id']}", {"preferences": {"topics": {"news": False}}})
    from selfservice import bootstrap

    bootstrap.adapters().repository.suppress(address_hash("bounced@example.com"), "hard_bounce", clock.now)
    assert sorted(index_entries(stack)) == sorted([paused["id"], bounced["id"]]), "the index holds only those due"
    assert (
        stack.request("PATCH", f"/api/profiles/{shop['id']}", {"preferences": {"frequency": "monthly"}}).status == 200
    )
    clock.advance(days=3)
    assert run_notes(stack) == {"sent": 1, "suppressed": 1}
    assert [message["To"] for message in notes(stack)] == ["paused@example.com"]
    assert index_entries(stack) == [], "told (or not to be told): out of the index"
    assert unpaused["id"] not in index_entries(stack)


def test_an_extended_pause_has_a_new_end_and_gets_its_own_note(stack, clock):
    kim = subscriber(stack, "kim@example.com", "en")
    first_end = clock.now + dt.timedelta(days=7)
    pause(stack, kim, first_end)
    clock.advance(days=5)
    assert run_notes(stack) == {"sent": 1}
    # The "extend" link: the pages behind it, signed in by the link's token.
    [note] = notes(stack)
    extend = next(
        link for link in re.findall(r"https?://\S+", note.get_body(("plain",)).get_content()) if "#pause" in link
    )
    assert extend.endswith("&next=/communication#pause")
    opened = stack.client.get(extend.removeprefix("http://127.0.0.1:3000").removesuffix("#pause"))
    assert opened.status_code == 303
    assert opened.headers["Location"] == "/communication"
    page = stack.client.get("/communication").get_data(as_text=True)
    assert "Paused until December 8, 2026" in page
    assert "Extend the pause by" in page
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    version = re.search(r'name="version" value="(\d+)"', page).group(1)
    form = {
        "csrf": csrf,
        "version": version,
        "topics_shown": "1",
        "topic": ["news", "events"],
        "channel-events": "email",
        "frequency": "as_published",
    }
    saved = stack.client.post("/communication", data={**form, "pause_weeks": "2"})
    assert saved.status_code == 303, saved.get_data(as_text=True)[-2000:]
    profile = stack.request("GET", f"/api/profiles/{kim['id']}").json
    new_end = dt.datetime.fromisoformat(profile["preferences"]["paused_until"])
    assert new_end == first_end + dt.timedelta(weeks=2), "extended from the end, not from today"
    assert "Paused until December 22, 2026" in stack.client.get("/communication").get_data(as_text=True)
    clock.advance(days=10)
    assert run_notes(stack) == {}
    clock.advance(days=3)  # three days before the new end
    assert run_notes(stack) == {"sent": 1}
    assert len(notes(stack)) == 2
