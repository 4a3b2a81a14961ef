"""The consent-proof document: a customer subscribes by double opt-in, adds a topic on the page,
switches SMS on and leaves by one-click; every step is in the document (JSON and print-ready HTML)
with door, wording and evidence, a claimed IP address and user agent are checked against the stored
hashes, the customer's data download carries the same proof, and erasure takes it away."""

from __future__ import annotations

import hashlib
import json
import re

import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sns.models import sns_backends

from devstack.cfn import REGION
from selfservice.catalog import load_catalog
from tests.conftest import REPO
from tests.integration.test_consent import (
    UA,
    WORDING,
    csrf_of,
    hidden,
    save_communication,
    sign_in,
    subscribe_and_confirm,
    unsubscribe_token,
)

ADDRESS = "proof@example.com"
SMS_UA = "Mozilla/5.0 (Android 15; Mobile) proof test"
SMS_WORDING = "sms-2026-01"
PHONE = "+4915123456789"
PHONE_CLIENT = {"REMOTE_ADDR": "198.51.100.23"}
"""The phone's browser, on its mobile network (the gateway reports it as the request's source IP)."""
CATALOG = load_catalog(REPO / "templates" / "catalog.yaml")


def switch_sms_on(stack, profile_id: str, topic: str) -> None:
    """SMS on for ``topic`` by the SMS double opt-in, from a phone's browser: the number on the profile,
    SMS chosen on the communication page (a code goes to the number), the code entered there."""
    patch = {"fields": {"phone": PHONE}}
    assert stack.request("PATCH", f"/api/profiles/{profile_id}", patch, headers={"If-Match": "*"}).status == 200
    sns = sns_backends[DEFAULT_ACCOUNT_ID][REGION]
    sns.sms_messages.clear()
    html = stack.client.get("/communication", headers={"User-Agent": SMS_UA}, environ_base=PHONE_CLIENT).get_data(
        as_text=True
    )
    form = {
        "csrf": csrf_of(html),
        "version": hidden(html, "version"),
        "topics_shown": "1",
        "topic": ["news", topic],
        "frequency": "weekly",
        "pause_weeks": "0",
        "channel-news": ["email"],
        f"channel-{topic}": ["email", "sms"],
    }
    assert (
        stack.client.post(
            "/communication", data=form, headers={"User-Agent": SMS_UA}, environ_base=PHONE_CLIENT
        ).status_code
        == 303
    )
    [(number, text)] = list(sns.sms_messages.values())
    assert number == PHONE
    code = re.search(r"\b(\d{6})\b", text).group(1)
    html = stack.client.get("/communication", headers={"User-Agent": SMS_UA}, environ_base=PHONE_CLIENT).get_data(
        as_text=True
    )
    confirmed = stack.client.post(
        "/communication/sms/confirm",
        data={"csrf": csrf_of(html), "sms_code": code},
        headers={"User-Agent": SMS_UA},
        environ_base=PHONE_CLIENT,
    )
    assert confirmed.status_code == 303


@pytest.fixture
def walked(stack) -> str:
    """The Must-show walk: double opt-in (news), offers added on the page, SMS on, one-click out."""
    profile_id = subscribe_and_confirm(stack, ADDRESS, ["news"])
    sign_in(stack, profile_id)
    assert save_communication(stack, ["news", "offers"]).status_code == 303
    switch_sms_on(stack, profile_id, "offers")
    answer = stack.client.post(
        f"/unsubscribe/one-click?token={unsubscribe_token(profile_id)}",
        data={"List-Unsubscribe": "One-Click"},
        headers={"User-Agent": "Mail client/1.0"},
    )
    assert answer.status_code == 200
    return profile_id


def test_the_proof_shows_every_step_with_door_wording_message_and_evidence(stack, walked):
    answer = stack.request("GET", f"/api/profiles/{walked}/consent-proof")
    assert answer.status == 200
    assert answer.headers["Content-Type"].startswith("application/json")
    proof = answer.json
    assert proof["email"] == ADDRESS
    steps = [(c["action"], c["door"], c["channel"], c["topics"]) for c in proof["consents"]]
    assert steps == [
        ("given", "confirmation-link", "email", ["news"]),
        ("given", "page", "email", ["offers"]),
        ("given", "page", "sms", ["offers"]),
        ("withdrawn", "one-click", "all", ["news", "offers"]),
        ("withdrawn", "one-click", "sms", ["offers"]),
    ]
    assert [c["wording_version"] for c in proof["consents"]] == [WORDING, WORDING, SMS_WORDING, WORDING, SMS_WORDING]
    assert proof["consents"][2]["phone"] == PHONE
    assert all(any(e["role"] == "action" for e in c["evidence"]) for c in proof["consents"]), "every step has evidence"

    # the double opt-in: the request before it, and the email that asked, as it was sent
    double_opt_in = proof["consents"][0]
    assert double_opt_in["request"]["source"] == "page"
    assert double_opt_in["request"]["wording_requested"] == WORDING
    assert {e["role"] for e in double_opt_in["evidence"]} == {"action", "request"}
    [email] = double_opt_in["messages"]
    [sent] = [m for m in stack.sent_emails() if ADDRESS in str(m.destinations)]
    assert email["message_id"] == sent.id
    message = _mime(sent.raw_data)
    assert message["Subject"] == email["subject"]
    text_part = next(part.get_content() for part in message.walk() if part.get_content_type() == "text/plain")
    received = text_part.replace("\r\n", "\n")  # as received by SMTP, line endings CRLF
    assert email["text_sha256"] == hashlib.sha256(received.encode()).hexdigest(), "the digest is of the text sent"
    assert "token=…" in email["text_copy"]
    assert re.search(r"token=[A-Za-z0-9_-]{8}", email["text_copy"]) is None, "the kept copy opens nothing"

    # the exact wording of every version a consent names, the SMS double opt-in's among them
    assert [(w["of"], w["version"]) for w in proof["wordings"]] == [("email", WORDING), ("sms", SMS_WORDING)]
    for wording in proof["wordings"]:
        expected = CATALOG.consent_wording(wording["version"], wording["of"])
        assert wording["text"] == {"de": expected.text.de, "en": expected.text.en}
        assert wording["sha256"]["de"] == hashlib.sha256(expected.text.de.encode()).hexdigest()

    # the SMS consent: the code sent to the number before it
    [code] = proof["consents"][2]["messages"]
    assert (code["kind"], code["channel"], code["phone"]) == ("sms_code_sent", "sms", PHONE)
    assert code["message_id"]

    # now: withdrawn on every channel, and nothing received
    current = {(c["topic"], c["channel"]): (c["consented"], c["receiving"]) for c in proof["current"]}
    assert current == {
        ("news", "email"): (False, False),
        ("offers", "email"): (False, False),
        ("offers", "sms"): (False, False),
    }


def _mime(raw: str):
    from email import message_from_bytes
    from email.policy import default

    return message_from_bytes(raw if isinstance(raw, bytes) else raw.encode(), policy=default)


def test_a_claimed_ip_and_user_agent_are_checked_against_the_stored_hashes(stack, walked):
    proof = stack.request("GET", f"/api/profiles/{walked}/consent-proof").json
    sms = proof["consents"][2]
    [evidence] = sms["evidence"]
    # offline, as the document explains it
    claimed = f"{evidence['salt']}|198.51.100.23|{SMS_UA}"
    assert hashlib.sha256(claimed.encode()).hexdigest() == evidence["hash"]

    path = f"/api/profiles/{walked}/consent-proof/check"
    answer = stack.request("POST", path, {"ip": "198.51.100.23", "userAgent": SMS_UA})
    assert answer.status == 200
    assert answer.json["checked"] == 6  # five consent entries (one-click withdrew email and SMS) and the request
    assert [(m["entryId"], m["action"], m["evidence"]) for m in answer.json["matches"]] == [
        (sms["entry_id"], "given", "action")
    ]
    # the test client's own clicks (the gateway reports 127.0.0.1): the double opt-in request and confirmation
    own = stack.request("POST", path, {"ip": "127.0.0.1", "userAgent": UA}).json["matches"]
    assert [(m["action"], m["evidence"]) for m in own] == [
        ("given", "action"),
        ("given", "request"),
        ("given", "action"),
    ]
    assert stack.request("POST", path, {"ip": "198.51.100.24", "userAgent": SMS_UA}).json["matches"] == []
    assert stack.request("POST", path, {"ip": "198.51.100.23", "userAgent": SMS_UA + " "}).json["matches"] == []

    wrong = stack.request("POST", path, {"ip": "not an address", "userAgent": SMS_UA})
    assert wrong.status == 422
    assert wrong.json["problems"][0]["field"] == "ip"
    assert "not an address" not in wrong.text
    missing = stack.request("POST", path, {"ip": "198.51.100.23"})
    assert missing.status == 422


@pytest.mark.parametrize(
    ("headers", "query", "language"),
    [
        ({"Accept": "text/html"}, None, "de"),
        ({"Accept": "text/html,application/xhtml+xml;q=0.9", "Accept-Language": "en-GB,en;q=0.8"}, None, "en"),
        ({"Accept": "text/html", "Accept-Language": "en"}, {"lang": "de"}, "de"),
    ],
)
def test_the_proof_is_a_print_ready_page_in_german_or_english(stack, walked, headers, query, language):
    answer = stack.request("GET", f"/api/profiles/{walked}/consent-proof", headers=headers, query=query)
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "default-src 'none'" in answer.headers["Content-Security-Policy"]
    html = answer.text
    assert f'<html lang="{language}">' in html
    assert "@media print" in html
    title = "Einwilligungsnachweis" if language == "de" else "Consent proof"
    assert f"<h1>{title}</h1>" in html
    proof = stack.request("GET", f"/api/profiles/{walked}/consent-proof").json
    for record in proof["consents"]:
        assert f'id="entry-{record["entry_id"]}"' in html
        for evidence in record["evidence"]:
            assert evidence["hash"] in html
    wording = CATALOG.consent_wording(WORDING)
    assert wording.text.de in html
    assert wording.text.en in html
    assert proof["consents"][0]["messages"][0]["message_id"] in html
    door = "Link in der Double-Opt-in-E-Mail" if language == "de" else "the link in the double opt-in email"
    assert door in html
    assert "sha256sum" in html


def test_the_data_download_carries_the_proof_and_erasure_removes_it(stack, walked):
    download = stack.client.get("/privacy/export", headers={"User-Agent": UA})
    assert download.status_code == 200
    exported = json.loads(download.get_data(as_text=True))["consent_proof"]
    from_api = stack.request("GET", f"/api/profiles/{walked}/consent-proof").json
    assert exported["consents"] == from_api["consents"]
    assert exported["wordings"] == from_api["wordings"]

    assert stack.request("DELETE", f"/api/profiles/{walked}").status == 200
    assert stack.request("GET", f"/api/profiles/{walked}/consent-proof").status == 404
    check = stack.request("POST", f"/api/profiles/{walked}/consent-proof/check", {"ip": "127.0.0.1", "userAgent": UA})
    assert check.status == 404
    left = [item for item in stack.items() if walked in json.dumps(item)]
    assert left == [], "nothing of the profile or its proof is left"
    suppression = [item for item in stack.items() if item["pk"]["S"].startswith("SUPPRESSED#")]
    assert len(suppression) == 1
    assert ADDRESS not in json.dumps(suppression), "the suppression list keeps only the hash"
