"""Every place a topic can be switched leaves one consent entry per change, with wording version,
source and evidence; the data download's consents reproduce the topics the customer receives."""

from __future__ import annotations

import json
import re

import pytest

from devstack.demo import seed_demo_profiles
from selfservice.settings import DEVELOPMENT_TOKEN_SECRET
from selfservice.tokens import Purpose, TokenSigner
from selfservice.usecases.subscription import evidence_matches

UA = "Mozilla/5.0 (consent test)"
WORDING = "2026-01"


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def hidden(html: str, name: str) -> str:
    return re.search(rf'name="{name}" value="([^"]+)"', html).group(1)


class Walk:
    """One customer's consent entries, step by step: each step must add exactly what it says."""

    def __init__(self, stack, profile_id: str) -> None:
        self.stack, self.profile_id = stack, profile_id
        self.seen = {entry["id"] for entry in self.consents()}

    def consents(self) -> list[dict]:
        entries = self.stack.request("GET", f"/api/profiles/{self.profile_id}/history", query={"limit": "500"}).json
        return [e for e in entries["entries"] if e["kind"] in ("consent_given", "consent_withdrawn")]

    def new(self) -> list[tuple[str, str, list[str]]]:
        fresh = [e for e in self.consents() if e["id"] not in self.seen]
        self.seen |= {e["id"] for e in fresh}
        for entry in fresh:
            assert entry["consent_version"] == WORDING, entry
            if entry["source"] == "api":
                assert entry["detail"]["caller"], "the API names its caller"
            else:
                assert evidence_matches(entry["detail"], "127.0.0.1", UA), "page entries keep the client's evidence"
        return sorted((e["kind"], e["source"], e["topics"]) for e in fresh)

    def profile(self) -> dict:
        return self.stack.request("GET", f"/api/profiles/{self.profile_id}").json

    def receiving(self) -> list[str]:
        profile = self.profile()
        if profile["status"] != "subscribed":
            return []
        return sorted(topic for topic, on in profile["preferences"]["topics"].items() if on)


def sign_in(stack, profile_id: str) -> None:
    token = TokenSigner([DEVELOPMENT_TOKEN_SECRET]).issue(profile_id, 0, Purpose.MANAGE)
    assert stack.client.get(f"/link?token={token}", headers={"User-Agent": UA}).status_code == 303


def save_communication(stack, topics: list[str]):
    html = stack.client.get("/communication", headers={"User-Agent": UA}).get_data(as_text=True)
    form = {
        "csrf": csrf_of(html),
        "version": hidden(html, "version"),
        "topics_shown": "1",  # as the page sends it; a stale tab still does after leaving
        "topic": topics,
        "frequency": "weekly",
        "pause_weeks": "0",
        **{f"channel-{topic}": ["email"] for topic in topics},
    }
    return stack.client.post("/communication", data=form, headers={"User-Agent": UA})


def unsubscribe_token(profile_id: str) -> str:
    return TokenSigner([DEVELOPMENT_TOKEN_SECRET]).issue(profile_id, 0, Purpose.UNSUBSCRIBE)


def less_mail(stack, profile_id: str, topics: list[str]):
    token = unsubscribe_token(profile_id)
    html = stack.client.get(f"/unsubscribe?token={token}", headers={"User-Agent": UA}).get_data(as_text=True)
    form = {
        "csrf": csrf_of(html),
        "token": token,
        "action": "opt_down",
        "topic": topics,
        "frequency": "monthly",
        "pause_weeks": "0",
        "reason": "too_many",
    }
    return stack.client.post("/unsubscribe", data=form, headers={"User-Agent": UA})


def exported_consents(stack) -> dict:
    download = stack.client.get("/privacy/export", headers={"User-Agent": UA})
    assert download.status_code == 200
    return json.loads(download.get_data(as_text=True))["consents"]


def subscribe_and_confirm(stack, address: str, topics: list[str]) -> str:
    html = stack.client.get("/subscribe", headers={"User-Agent": UA}).get_data(as_text=True)
    form = {"csrf": csrf_of(html), "email": address, "topic": topics}
    assert stack.client.post("/subscribe", data=form, headers={"User-Agent": UA}).status_code == 200
    profile = stack.request("GET", "/api/profiles", query={"email": address}).json
    assert Walk(stack, profile["id"]).consents() == [], "asking is not consenting: nothing before the confirmation"
    token = TokenSigner([DEVELOPMENT_TOKEN_SECRET]).issue(profile["id"], 0, Purpose.CONFIRM)
    page = stack.client.get(f"/confirm?token={token}", headers={"User-Agent": UA}).get_data(as_text=True)
    form = {"csrf": csrf_of(page), "token": hidden(page, "token")}
    assert stack.client.post("/confirm", data=form, headers={"User-Agent": UA}).status_code == 303
    return profile["id"]


def test_every_door_records_each_topic_switch_as_a_consent_entry(stack):
    profile_id = subscribe_and_confirm(stack, "walk@example.com", ["news", "offers"])
    walk = Walk(stack, profile_id)
    walk.seen = set()
    assert walk.new() == [("consent_given", "confirmation-link", ["news", "offers"])]

    # the communication page: one topic added, one removed
    sign_in(stack, profile_id)
    assert save_communication(stack, ["news", "events"]).status_code == 303
    assert walk.new() == [
        ("consent_given", "page", ["events"]),
        ("consent_withdrawn", "page", ["offers"]),
    ]
    assert exported_consents(stack)["proven"] == walk.receiving() == ["events", "news"]

    # the less-mail form: dropping one topic and adding another are a withdrawal and a consent
    assert less_mail(stack, profile_id, ["news", "offers"]).status_code == 200
    assert walk.new() == [
        ("consent_given", "page", ["offers"]),
        ("consent_withdrawn", "page", ["events"]),
    ]

    # the JSON API: off and on again
    path = f"/api/profiles/{profile_id}"
    assert stack.request("PATCH", path, {"preferences": {"topics": {"news": False}}}).status == 200
    assert walk.new() == [("consent_withdrawn", "api", ["news"])]
    assert stack.request("PATCH", path, {"preferences": {"topics": {"news": True}}}).status == 200
    assert walk.new() == [("consent_given", "api", ["news"])]
    # a change that switches no topic is no consent entry
    assert stack.request("PATCH", path, {"preferences": {"frequency": "weekly"}}).status == 200
    assert walk.new() == []
    consents = exported_consents(stack)
    assert consents["proven"] == consents["receiving"] == walk.receiving() == ["news", "offers"]

    # RFC 8058 one-click, sent as multipart/form-data as some mail clients do
    one_click = f"/unsubscribe/one-click?token={unsubscribe_token(profile_id)}"
    answer = stack.client.post(
        one_click,
        data={"List-Unsubscribe": "One-Click"},
        content_type="multipart/form-data",
        headers={"User-Agent": UA},
    )
    assert answer.status_code == 200
    assert walk.new() == [("consent_withdrawn", "one-click", ["news", "offers"])]
    assert walk.profile()["status"] == "unsubscribed"
    consents = exported_consents(stack)
    assert consents["proven"] == consents["receiving"] == []
    assert {t["topic"]: t["receiving"] for t in consents["topics"]} == {
        "events": False,
        "news": False,
        "offers": False,
    }


def test_switching_off_the_last_topic_is_an_unsubscribe_on_every_door(stack):
    anna = next(e for e in seed_demo_profiles() if e["email"] == "anna.schmidt@example.com")
    walk = Walk(stack, anna["profile_id"])
    receiving = walk.receiving()
    answer = stack.request(
        "PATCH", f"/api/profiles/{anna['profile_id']}", {"preferences": {"topics": dict.fromkeys(receiving, False)}}
    )
    assert answer.status == 200
    assert answer.json["status"] == "unsubscribed"
    assert walk.new() == [("consent_withdrawn", "api", receiving)]


@pytest.mark.parametrize("door", ["api", "page"])
def test_a_topic_cannot_be_switched_on_without_a_confirmed_subscription(stack, door):
    anna = next(e for e in seed_demo_profiles() if e["email"] == "anna.schmidt@example.com")
    stack.client.post(
        f"/unsubscribe/one-click?token={unsubscribe_token(anna['profile_id'])}",
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    walk = Walk(stack, anna["profile_id"])
    before = walk.profile()
    if door == "api":
        answer = stack.request(
            "PATCH", f"/api/profiles/{anna['profile_id']}", {"preferences": {"topics": {"news": True}}}
        )
        assert answer.status == 422
        assert answer.json["problems"][0]["field"] == "preferences.topics.news"
    else:
        sign_in(stack, anna["profile_id"])
        assert save_communication(stack, ["news"]).status_code == 422
    assert walk.profile() == before
    assert walk.new() == []


def anna_id() -> str:
    return next(e for e in seed_demo_profiles() if e["email"] == "anna.schmidt@example.com")["profile_id"]


def outbox_to(stack, address: str) -> list:
    import email
    from email.policy import default

    found = [email.message_from_string(m.raw_data, policy=default) for m in stack.sent_emails()]
    return [m for m in found if m["To"] == address]


def test_signed_in_customer_leaves_everything_and_subscribes_again_by_double_opt_in(stack):
    profile_id = anna_id()
    walk = Walk(stack, profile_id)
    receiving = walk.receiving()
    sign_in(stack, profile_id)
    html = stack.client.get("/communication", headers={"User-Agent": UA}).get_data(as_text=True)
    assert "Von allem abmelden" in html
    left = stack.client.post("/communication/leave", data={"csrf": csrf_of(html)}, headers={"User-Agent": UA})
    assert left.status_code == 303
    assert walk.new() == [("consent_withdrawn", "page", receiving)]

    overview = stack.client.get("/", headers={"User-Agent": UA}).get_data(as_text=True)
    assert "Sie erhalten keine Newsletter." in overview
    assert 'href="/communication#subscribe"' in overview
    html = stack.client.get("/communication?left=1", headers={"User-Agent": UA}).get_data(as_text=True)
    assert "Sie sind von allen Newslettern abgemeldet" in html
    assert 'action="/communication/subscribe"' in html

    refused = stack.client.post("/communication/subscribe", data={"csrf": csrf_of(html)}, headers={"User-Agent": UA})
    assert refused.status_code == 422
    assert 'id="topics-error"' in refused.get_data(as_text=True)

    asked = stack.client.post(
        "/communication/subscribe", data={"csrf": csrf_of(html), "topic": ["news"]}, headers={"User-Agent": UA}
    )
    assert asked.status_code == 303
    assert walk.new() == [], "nothing is received before the confirmation"
    assert walk.receiving() == []
    [confirmation] = outbox_to(stack, "anna.schmidt@example.com")
    text = confirmation.get_body(("plain",)).get_content()
    link = next(word for word in text.split() if "/confirm?token=" in word).replace("http://127.0.0.1:3000", "")
    page = stack.client.get(link, headers={"User-Agent": UA}).get_data(as_text=True)
    form = {"csrf": csrf_of(page), "token": hidden(page, "token")}
    assert stack.client.post("/confirm", data=form, headers={"User-Agent": UA}).status_code == 303
    assert walk.new() == [("consent_given", "confirmation-link", ["news"])]
    assert walk.receiving() == ["news"]


def test_pending_customer_can_resend_the_confirmation_and_saving_keeps_the_requested_topics(stack):
    html = stack.client.get("/subscribe", headers={"User-Agent": UA}).get_data(as_text=True)
    form = {"csrf": csrf_of(html), "email": "wartet@example.com", "topic": ["news", "offers"]}
    stack.client.post("/subscribe", data=form, headers={"User-Agent": UA})
    profile = stack.request("GET", "/api/profiles", query={"email": "wartet@example.com"}).json
    sign_in(stack, profile["id"])
    overview = stack.client.get("/", headers={"User-Agent": UA}).get_data(as_text=True)
    assert "Bestätigungs-E-Mail noch einmal senden" in overview
    assert 'action="/communication/resend"' in overview

    page = stack.client.get("/communication", headers={"User-Agent": UA}).get_data(as_text=True)
    saved = stack.client.post(
        "/communication",
        data={"csrf": csrf_of(page), "version": hidden(page, "version"), "frequency": "monthly", "pause_weeks": "0"},
        headers={"User-Agent": UA},
    )
    assert saved.status_code == 303
    stored = stack.request("GET", f"/api/profiles/{profile['id']}").json
    assert stored["preferences"]["frequency"] == "monthly"
    assert stored["preferences"]["topics"] == {"news": True, "offers": True}, "the requested topics wait"
    assert len(outbox_to(stack, "wartet@example.com")) == 1
