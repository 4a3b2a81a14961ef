"""The SMS double opt-in through the pages, the JSON API and STOP replies, on moto (SNS records the SMS)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sns.models import sns_backends
from pydantic import ValidationError

from devstack.cfn import REGION
from devstack.demo import seed_demo_profiles
from selfservice.domain.sms import fits_one_sms
from selfservice.settings import DEVELOPMENT_TOKEN_SECRET
from selfservice.tokens import Purpose, TokenSigner
from tests.integration.test_pages import csrf_of, get, sign_in, version_of

EVENTS = Path(__file__).resolve().parents[1] / "events"
ANNA_PHONE = "+4915112345678"
NEW_PHONE = "+4915198765432"


@pytest.fixture
def demo(stack):
    return {entry["email"]: entry for entry in seed_demo_profiles()}


@pytest.fixture(autouse=True)
def _empty_sms_outbox(stack):
    sns_backends[DEFAULT_ACCOUNT_ID][REGION].sms_messages.clear()


def sms_sent() -> list[tuple[str, str]]:
    """(number, text) of every SMS SNS accepted, oldest first."""
    return list(sns_backends[DEFAULT_ACCOUNT_ID][REGION].sms_messages.values())


def code_in(text: str) -> str:
    return re.search(r"\b(\d{6})\b", text).group(1)


def profile(stack, profile_id: str) -> dict[str, Any]:
    return stack.request("GET", f"/api/profiles/{profile_id}").json


def history(stack, profile_id: str) -> list[dict[str, Any]]:
    return stack.request("GET", f"/api/profiles/{profile_id}/history").json["entries"]


def set_phone(stack, phone: str):
    _status, html, _ = get(stack, "/profile")
    form = dict(re.findall(r'<input type="text" id="(\w+)" name="\w+" value="([^"]*)"', html))
    form.update({"csrf": csrf_of(html), "version": version_of(html), "phone": phone, "salutation": "ms"})
    return stack.client.post("/profile", data=form)


def switch_sms_on(stack, topics=("offers", "news")):
    _status, html, _ = get(stack, "/communication")
    return stack.client.post(
        "/communication",
        data={
            "csrf": csrf_of(html),
            "version": version_of(html),
            "topics_shown": "1",
            "topic": list(topics),
            "channel-offers": ["email", "sms"],
            "channel-events": ["email"],
            "channel-service_updates": ["email"],
            "frequency": "weekly",
            "pause_weeks": "0",
        },
    )


def enter_code(stack, code: str):
    _status, html, _ = get(stack, "/communication")
    return stack.client.post("/communication/sms/confirm", data={"csrf": csrf_of(html), "sms_code": code})


def anna_with_sms_pending(stack, demo) -> str:
    anna = demo["anna.schmidt@example.com"]
    sign_in(stack, anna["link"])
    assert set_phone(stack, ANNA_PHONE).headers["Location"] == "/profile?saved=1", "no SMS chosen yet: no code"
    assert sms_sent() == []
    response = switch_sms_on(stack)
    assert response.status_code == 303
    assert response.headers["Location"] == "/communication?saved=1&sms=sent#sms"
    return str(anna["profile_id"])


def test_switching_sms_on_sends_a_code_and_entering_it_confirms_the_number_with_a_consent(stack, demo):
    anna_id = anna_with_sms_pending(stack, demo)
    [(number, text)] = sms_sent()
    assert number == ANNA_PHONE
    assert re.fullmatch(r"Example Shop: Ihr Code lautet \d{6}\. Gültig 10 Min\. Abmelden: 127\.0\.0\.1:3000", text)
    assert fits_one_sms(text)

    _status, page, _ = get(stack, "/communication?saved=1&sms=sent")
    assert "Wir haben Ihnen einen Code per SMS geschickt" in page
    field = re.search(r'<input type="text" id="sms_code"[^>]*>', page).group(0)
    assert 'autocomplete="one-time-code"' in field
    assert 'inputmode="numeric"' in field
    assert "wartet auf den Code aus der SMS" in page
    pending = profile(stack, anna_id)
    assert (pending["sms_channel"], pending["verified_phone"]) == ("pending", None)
    assert pending["preferences"]["channels"]["offers"] == ["email", "sms"], "the choice is kept while pending"
    sent_entry = history(stack, anna_id)[0]
    assert sent_entry["kind"] == "sms_code_sent"
    assert sent_entry["detail"]["phone"] == ANNA_PHONE
    assert code_in(text) not in json.dumps(history(stack, anna_id)), "the code is never kept in the ledger"
    assert code_in(text) not in json.dumps(stack.items()), "nor anywhere in the table"

    response = enter_code(stack, code_in(text))
    assert response.status_code == 303
    assert response.headers["Location"] == "/communication?sms=confirmed"
    _status, page, _ = get(stack, "/communication?sms=confirmed")
    assert "Ihre Mobilnummer ist bestätigt" in page
    assert f"SMS gehen an Ihre bestätigte Nummer {ANNA_PHONE} (Themen: Angebote)" in page
    assert 'id="sms_code"' not in page
    active = profile(stack, anna_id)
    assert (active["sms_channel"], active["verified_phone"]) == ("active", ANNA_PHONE)
    consent = next(e for e in history(stack, anna_id) if e["kind"] == "consent_given")
    assert consent["topics"] == ["offers"]
    assert consent["consent_version"] == "sms-2026-01"
    assert consent["source"] == "page"
    assert consent["detail"]["channel"] == "sms"
    assert consent["detail"]["phone"] == ANNA_PHONE
    assert {"evidence_salt", "evidence_hash", "code_sent_at"} <= set(consent["detail"])

    # The code is used up: entering it again confirms nothing more.
    assert enter_code(stack, code_in(text)).status_code == 422
    _status, page, _ = get(stack, "/history")
    assert "Einwilligung erteilt" in page
    assert f"Per SMS an {ANNA_PHONE}" in page


def test_a_wrong_code_is_refused_next_to_the_field_and_five_wrong_ones_use_the_code_up(stack, demo):
    anna_id = anna_with_sms_pending(stack, demo)
    [(_number, text)] = sms_sent()
    wrong = f"{(int(code_in(text)) + 1) % 1_000_000:06d}"
    response = enter_code(stack, wrong)
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert re.search(r'<p class="field-error" id="sms_code-error">Dieser Code stimmt nicht\. .*Versuche: 4\)', page)
    assert 'href="#sms_code"' in page, "the error summary leads to the field"
    assert profile(stack, anna_id)["sms_channel"] == "pending"

    for _attempt in range(4):
        response = enter_code(stack, wrong)
    assert "wurde zu oft falsch eingegeben" in response.get_data(as_text=True)
    response = enter_code(stack, code_in(text))
    assert response.status_code == 422, "a used-up code stays used up, even the right one"
    assert "wurde zu oft falsch eingegeben" in response.get_data(as_text=True)
    assert enter_code(stack, "12a45").get_data(as_text=True).count("6-stelligen Code") >= 1
    assert profile(stack, anna_id)["verified_phone"] is None

    # A new code works.
    _status, html, _ = get(stack, "/communication")
    response = stack.client.post("/communication/sms/resend", data={"csrf": csrf_of(html)})
    assert response.headers["Location"] == "/communication?sms=sent#sms"
    new_text = sms_sent()[-1][1]
    assert enter_code(stack, code_in(new_text)[:3] + " " + code_in(new_text)[3:]).status_code == 303
    assert profile(stack, anna_id)["sms_channel"] == "active"


def test_an_expired_code_is_refused(stack, demo, clock):
    anna_with_sms_pending(stack, demo)
    [(_number, text)] = sms_sent()
    clock.advance(minutes=10)
    response = enter_code(stack, code_in(text))
    assert response.status_code == 422
    assert "Dieser Code ist abgelaufen" in response.get_data(as_text=True)


def test_a_new_number_starts_again_and_withdraws_sms_for_the_old_one(stack, demo):
    anna_id = anna_with_sms_pending(stack, demo)
    assert enter_code(stack, code_in(sms_sent()[0][1])).status_code == 303

    response = set_phone(stack, NEW_PHONE)
    assert response.headers["Location"] == "/communication?saved=1&sms=sent#sms", "a new number gets a code"
    assert sms_sent()[-1][0] == NEW_PHONE
    changed = profile(stack, anna_id)
    assert (changed["sms_channel"], changed["verified_phone"]) == ("pending", None)
    withdrawn = next(e for e in history(stack, anna_id) if e["kind"] == "consent_withdrawn")
    assert withdrawn["detail"]["channel"] == "sms"
    assert withdrawn["detail"]["phone"] == ANNA_PHONE
    assert withdrawn["topics"] == ["offers"]
    assert withdrawn["consent_version"] == "sms-2026-01"

    assert enter_code(stack, code_in(sms_sent()[0][1])).status_code == 422, "the old number's code is void"
    assert enter_code(stack, code_in(sms_sent()[-1][1])).status_code == 303
    assert profile(stack, anna_id)["verified_phone"] == NEW_PHONE


def test_codes_per_number_are_limited(stack, demo):
    anna_with_sms_pending(stack, demo)
    for _resend in range(4):
        _status, html, _ = get(stack, "/communication")
        response = stack.client.post("/communication/sms/resend", data={"csrf": csrf_of(html)})
        assert response.headers["Location"] == "/communication?sms=sent#sms"
    _status, html, _ = get(stack, "/communication")
    response = stack.client.post("/communication/sms/resend", data={"csrf": csrf_of(html)})
    assert response.headers["Location"] == "/communication?sms=limited#sms"
    assert len(sms_sent()) == 5, "five codes an hour per number"
    assert "keinen weiteren Code" in get(stack, "/communication?sms=limited")[1]
    assert ANNA_PHONE not in json.dumps([i for i in stack.items() if i["pk"]["S"].startswith("RATE#")])


def test_the_api_switching_sms_on_sends_a_code_and_shows_the_channel_pending(stack, demo):
    anna_id = demo["anna.schmidt@example.com"]["profile_id"]
    answer = stack.request(
        "PATCH",
        f"/api/profiles/{anna_id}",
        {"fields": {"phone": ANNA_PHONE}, "preferences": {"channels": {"offers": ["sms"]}}},
        headers={"If-Match": '"1"'},
    )
    assert answer.status == 200, answer.text
    assert (answer.json["sms_channel"], answer.json["verified_phone"]) == ("pending", None)
    [(number, text)] = sms_sent()
    assert number == ANNA_PHONE
    assert "Ihr Code lautet" in text
    assert history(stack, anna_id)[0]["source"] == "api"

    # A change that does not switch SMS on sends nothing more.
    answer = stack.request("PATCH", f"/api/profiles/{anna_id}", {"fields": {"city": "Potsdam"}})
    assert answer.status == 200
    assert len(sms_sent()) == 1
    assert stack.request("GET", f"/api/profiles/{anna_id}").json["sms_channel"] == "pending"


def test_an_english_profile_gets_an_english_sms_and_page(stack, demo):
    ben = demo["ben.miller@example.com"]
    stack.request("PATCH", f"/api/profiles/{ben['profile_id']}", {"fields": {"phone": "+447700900123"}})
    sign_in(stack, ben["link"])
    _status, html, _ = get(stack, "/communication")
    response = stack.client.post(
        "/communication",
        data={
            "csrf": csrf_of(html),
            "version": version_of(html),
            "topics_shown": "1",
            "topic": ["offers", "events"],
            "channel-offers": ["email"],
            "channel-events": ["sms"],
            "frequency": "as_published",
            "pause_weeks": "0",
        },
    )
    assert response.headers["Location"] == "/communication?saved=1&sms=sent#sms"
    [(_number, text)] = sms_sent()
    assert re.fullmatch(r"Example Shop: Your code is \d{6}\. Valid for 10 min\. Opt out: 127\.0\.0\.1:3000", text)
    page = enter_code(stack, "000000" if code_in(text) != "000000" else "111111").get_data(as_text=True)
    assert "This code is not right." in page
    assert enter_code(stack, code_in(text)).status_code == 303
    assert "SMS goes to your confirmed number +447700900123 (topics: Events)" in get(stack, "/communication")[1]


def keyword_event(name: str, phone: str) -> str:
    event = json.loads((EVENTS / name).read_text())
    message = json.loads(event["Records"][0]["Sns"]["Message"])
    if "originationNumber" in message:
        message["originationNumber"] = phone
    event["Records"][0]["Sns"]["Message"] = json.dumps(message)
    return json.dumps(event)


def test_a_stop_reply_withdraws_sms_for_every_topic(stack, demo):
    anna_id = anna_with_sms_pending(stack, demo)
    assert enter_code(stack, code_in(sms_sent()[0][1])).status_code == 303
    answer = stack.request(
        "PATCH",
        f"/api/profiles/{anna_id}",
        {"preferences": {"topics": {"events": True}, "channels": {"events": ["sms"]}}},
    )
    assert answer.json["sms_channel"] == "active", "the confirmed number takes one more topic without a new code"
    given = history(stack, anna_id)
    sms_given = next(e for e in given if e["kind"] == "consent_given" and e["detail"].get("channel"))
    assert sms_given["topics"] == ["events"]
    function = stack.resources.functions["SmsKeywordFunction"]

    result = stack.runtime.invoke(function, keyword_event("sms_stop.json", ANNA_PHONE))
    assert result.function_error is None, result.payload
    assert json.loads(result.payload) == {"withdrawn": 1, "ignored": 0}
    stopped = profile(stack, anna_id)
    assert (stopped["sms_channel"], stopped["verified_phone"]) == ("off", None)
    assert stopped["preferences"]["channels"] == {"offers": ["email"]}
    assert stopped["preferences"]["topics"]["events"] is False, "a topic only by SMS is switched off"
    assert stopped["status"] == "subscribed", "offers still come by email"
    entries = [e for e in history(stack, anna_id) if e["source"] == "sms-keyword"]
    sms_withdrawal = next(e for e in entries if e["kind"] == "consent_withdrawn" and e["detail"].get("channel"))
    assert sms_withdrawal["topics"] == ["events", "offers"]
    assert sms_withdrawal["detail"]["keyword"] == "STOP"
    assert sms_withdrawal["detail"]["phone"] == ANNA_PHONE
    news_withdrawal = next(e for e in entries if e["kind"] == "consent_withdrawn" and not e["detail"].get("channel"))
    assert news_withdrawal["topics"] == ["events"]
    pointers = [i for i in stack.items() if i["pk"]["S"].startswith("SMSPHONE#")]
    assert f"PROFILE#{anna_id}" not in json.dumps(pointers), "the number no longer leads to her profile"

    again = stack.runtime.invoke(function, keyword_event("sms_stop.json", ANNA_PHONE))
    assert json.loads(again.payload) == {"withdrawn": 0, "ignored": 0}, "a second STOP changes nothing"
    other = stack.runtime.invoke(function, keyword_event("sms_reply_other.json", ANNA_PHONE))
    assert json.loads(other.payload) == {"withdrawn": 0, "ignored": 1}


def test_a_malformed_reply_fails_the_invocation_for_the_dead_letter_queue(stack):
    function = stack.resources.functions["SmsKeywordFunction"]
    result = stack.runtime.invoke(function, (EVENTS / "sms_malformed.json").read_text())
    assert result.function_error == "Unhandled"
    assert json.loads(result.payload)["errorType"] == ValidationError.__name__


def test_erasure_leaves_no_trace_of_the_number(stack, demo):
    anna_id = anna_with_sms_pending(stack, demo)
    assert enter_code(stack, code_in(sms_sent()[0][1])).status_code == 303
    assert stack.request("DELETE", f"/api/profiles/{anna_id}").status == 200
    left = json.dumps([i for i in stack.items() if not i["pk"]["S"].startswith("RATE#")])
    assert ANNA_PHONE not in left
    assert anna_id not in left, "neither her code nor the entry that leads from her number to her profile"


def test_the_data_download_proves_the_sms_consent(stack, demo):
    anna_with_sms_pending(stack, demo)
    assert enter_code(stack, code_in(sms_sent()[0][1])).status_code == 303
    _status, body, _ = get(stack, "/privacy/export")
    sms = json.loads(body)["consents"]["sms"]
    assert sms["number"] == ANNA_PHONE
    assert sms["receiving"] == sms["proven"] == ["offers"]
    assert sms["topics"][0]["wording_version"] == "sms-2026-01"


def test_leaving_everything_withdraws_the_sms_consent_and_forgets_the_sms_choice(stack, demo):
    profile_id = anna_with_sms_pending(stack, demo)
    assert enter_code(stack, code_in(sms_sent()[0][1])).status_code == 303
    token = TokenSigner([DEVELOPMENT_TOKEN_SECRET]).issue(profile_id, 0, Purpose.UNSUBSCRIBE)
    left = stack.client.post(f"/unsubscribe/one-click?token={token}", data={"List-Unsubscribe": "One-Click"})
    assert left.status_code == 200
    withdrawals = [e for e in history(stack, profile_id) if e["kind"] == "consent_withdrawn"]
    assert {e["detail"].get("channel", "email") for e in withdrawals} == {"email", "sms"}
    [by_sms] = [e for e in withdrawals if e["detail"].get("channel") == "sms"]
    assert (by_sms["topics"], by_sms["detail"]["phone"], by_sms["source"]) == (["offers"], ANNA_PHONE, "one-click")
    _status, body, _ = get(stack, "/privacy/export")
    sms = json.loads(body)["consents"]["sms"]
    assert sms["receiving"] == sms["proven"] == [], "the download proves what is received: nothing by SMS"
    stored = profile(stack, profile_id)
    assert all("sms" not in channels for channels in stored["preferences"]["channels"].values()), (
        "subscribing again later brings no SMS back without a new SMS consent"
    )
