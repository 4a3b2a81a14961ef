"""Every email type, read back from SES on moto: both parts, exact headers, working scoped links,
the profile's language, and no unescaped customer input in the HTML part."""

from __future__ import annotations

import email
import re
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from selfservice.catalog import cached_catalog
from selfservice.settings import DEVELOPMENT_TOKEN_SECRET
from selfservice.tokens import Purpose, TokenSigner

EMAILS = Path(__file__).resolve().parents[2] / "templates" / "emails"
HOSTILE = '<b onmouseover="x">Kim & Co</b>'
LINK = re.compile(r"https?://[^\s\"<>]+")
TESTED_TYPES = {
    "self_service_link",
    "confirm_subscription",
    "service_request",
    "review_request",
    "request_update",
    "pause_ending",
}


def read_back(stack) -> list[EmailMessage]:
    return [email.message_from_string(m.raw_data, policy=default) for m in stack.sent_emails()]  # type: ignore[misc]


def check_structure(message: EmailMessage, *, to: str, language: str, email_type: str, marketing: bool) -> None:
    assert message.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in message.iter_parts()] == ["text/plain", "text/html"]
    assert message["From"] == "service@example.com"
    assert message["To"] == to
    assert message["Content-Language"] == language
    assert message["MIME-Version"] == "1.0"
    assert message["Message-ID"].endswith("@example.com>")
    assert message["Date"]
    assert re.fullmatch(rf"{email_type}:{language}:selfservice:\w+", message["Feedback-ID"])
    if marketing:
        assert re.fullmatch(
            r"<http://127\.0\.0\.1:3000/unsubscribe/one-click\?token=[\w.-]+>", message["List-Unsubscribe"]
        )
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    else:
        assert message["List-Unsubscribe"] is None
        assert message["List-Unsubscribe-Post"] is None


def legal_links(language: str) -> set[str]:
    """The company's imprint and privacy policy: every footer links them (the company's site, no token)."""
    company = cached_catalog(EMAILS.parent / "catalog.yaml").company
    return {company.imprint_url.get(language), company.privacy_policy_url.get(language)}


def links(message: EmailMessage) -> tuple[list[str], list[str]]:
    """The links into the pages, in the text and the HTML part (the footer's legal links checked and left out)."""
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content().replace("&amp;", "&")
    legal = legal_links(message["Content-Language"])
    text_links, html_links = LINK.findall(text), re.findall(r'href="(https?://[^"]+)"', html)
    assert legal <= set(text_links), "the text footer links imprint and privacy policy"
    assert legal <= set(html_links), "the HTML footer links imprint and privacy policy"
    statement = {link for link in text_links if urlparse(link).path == "/accessibility"}
    assert len(statement) == 1, "the text footer links the accessibility statement of the pages"
    assert statement <= set(html_links), "the HTML footer links the accessibility statement of the pages"
    legal |= statement
    return [link for link in text_links if link not in legal], [link for link in html_links if link not in legal]


def check_link(stack, link: str, purpose: Purpose, profile_id: str) -> None:
    token = parse_qs(urlparse(link).query)["token"][0]
    assert TokenSigner([DEVELOPMENT_TOKEN_SECRET]).verify(token, purpose)[0] == profile_id
    for other in Purpose:
        if other is not purpose:
            with pytest.raises(Exception):  # noqa: B017,PT011 - any refusal will do
                TokenSigner([DEVELOPMENT_TOKEN_SECRET]).verify(token, other)
    response = stack.client.get(link.replace("http://127.0.0.1:3000", ""))
    assert response.status_code < 400, link


def test_every_email_type_is_covered_here():
    types = {path.name.split(".")[0] for path in EMAILS.glob("*.html") if path.name != "layout.html"}
    assert types == TESTED_TYPES


@pytest.mark.parametrize("language", ["de", "en"])
def test_self_service_link(stack, language):
    created = stack.request(
        "POST", "/api/profiles", {"email": "kim@example.com", "locale": language, "fields": {"first_name": HOSTILE}}
    ).json
    stack.request("POST", f"/api/profiles/{created['id']}/self-service-link")
    [message] = read_back(stack)
    check_structure(message, to="kim@example.com", language=language, email_type="self_service_link", marketing=False)
    assert (
        message["Subject"] == {"de": "Ihr Link zu Ihren Einstellungen", "en": "Your link to your preferences"}[language]
    )
    html = message.get_body(("html",)).get_content()
    assert "<b onmouseover" not in html
    assert "&lt;b onmouseover=" in html
    assert "Kim &amp; Co&lt;/b&gt;" in html
    text_links, html_links = links(message)
    assert text_links == html_links
    [link] = text_links
    check_link(stack, link, Purpose.MANAGE, created["id"])


@pytest.mark.parametrize("language", ["de", "en"])
def test_confirm_subscription(stack, language):
    page = stack.client.get("/subscribe", headers={"Accept-Language": language}).get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    stack.client.post(
        "/subscribe",
        data={"csrf": csrf, "email": "neu@example.com", "topic": ["news"]},
        headers={"Accept-Language": language},
    )
    [message] = read_back(stack)
    check_structure(
        message, to="neu@example.com", language=language, email_type="confirm_subscription", marketing=False
    )
    profile_id = stack.request("GET", "/api/profiles", query={"email": "neu@example.com"}).json["id"]
    text_links, html_links = links(message)
    assert text_links == html_links
    [link] = text_links
    check_link(stack, link, Purpose.CONFIRM, profile_id)
    assert {"de": "Neuigkeiten", "en": "News"}[language] in message.get_body(("plain",)).get_content()


@pytest.mark.parametrize("language", ["de", "en"])
def test_request_update_brings_the_reply_escaped_and_a_link_to_the_requests(machines, language):
    stack = machines.stack  # closing a request starts the event review
    created = stack.request("POST", "/api/profiles", {"email": "kim@example.com", "locale": language}).json
    signer = TokenSigner([DEVELOPMENT_TOKEN_SECRET])
    assert stack.client.get(f"/link?token={signer.issue(created['id'], 0, Purpose.MANAGE)}").status_code == 303
    page = stack.client.get("/requests").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    sent = stack.client.post("/requests", data={"csrf": csrf, "type": "question", "message": "Eine Frage"})
    assert sent.status_code == 303, sent.get_data(as_text=True)[-3000:]
    [request] = [r for r in stack.request("GET", "/api/requests").json["items"] if r["profileId"] == created["id"]]
    stack.request("PATCH", f"/api/requests/{request['id']}", {"status": "closed", "reply": HOSTILE})
    [message] = [m for m in read_back(stack) if m["To"] == "kim@example.com"]
    check_structure(message, to="kim@example.com", language=language, email_type="request_update", marketing=False)
    assert message["Subject"] == {"de": "Ihre Anfrage ist abgeschlossen", "en": "Your request is closed"}[language]
    html = message.get_body(("html",)).get_content()
    assert "<b onmouseover" not in html
    assert "&lt;b onmouseover=" in html
    text_links, html_links = links(message)
    assert text_links == html_links
    [link] = text_links
    assert link.endswith("&next=/requests")
    check_link(stack, link, Purpose.MANAGE, created["id"])


def test_service_request_goes_to_the_mailbox_of_its_type_with_escaped_message(stack):
    created = stack.request("POST", "/api/profiles", {"email": "kim@example.com", "locale": "en"}).json
    signer = TokenSigner([DEVELOPMENT_TOKEN_SECRET])
    assert stack.client.get(f"/link?token={signer.issue(created['id'], 0, Purpose.MANAGE)}").status_code == 303
    page = stack.client.get("/requests").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    stack.client.post("/requests", data={"csrf": csrf, "type": "complaint", "message": HOSTILE})
    [message] = read_back(stack)
    check_structure(message, to="complaints@example.com", language="de", email_type="service_request", marketing=False)
    assert message["Reply-To"] == "kim@example.com"
    assert "<b onmouseover" not in message.get_body(("html",)).get_content()
    assert HOSTILE in message.get_body(("plain",)).get_content()


def test_review_request_is_marketing_with_one_click_unsubscribe_and_working_links(machines):
    from devstack.demo import seed_demo_profiles

    stack = machines.stack
    clara = next(e for e in seed_demo_profiles() if e["email"] == "clara.weber@example.com")
    stack.request("PATCH", f"/api/profiles/{clara['profile_id']}", {"fields": {"first_name": HOSTILE}})
    execution = machines.run("PeriodicReviewStateMachine", {})
    assert execution.status == "SUCCEEDED", execution.cause
    message = next(m for m in read_back(stack) if m["To"] == "clara.weber@example.com")
    check_structure(message, to="clara.weber@example.com", language="de", email_type="review_request", marketing=True)
    html = message.get_body(("html",)).get_content()
    assert "<b onmouseover" not in html
    assert "&lt;b onmouseover=" in html
    text_links, html_links = links(message)
    assert sorted(set(text_links)) == sorted(set(html_links))
    for link in set(text_links):
        purpose = Purpose.UNSUBSCRIBE if "/unsubscribe" in link else Purpose.MANAGE
        check_link(stack, link, purpose, clara["profile_id"])
    unsubscribe = message["List-Unsubscribe"].strip("<>")
    check_link(stack, unsubscribe, Purpose.UNSUBSCRIBE, clara["profile_id"])
    assert any("next=/profile" in link and "focus" in link for link in text_links), "the old fields come first"
    assert any("next=/review" in link for link in text_links), "a link to 'everything is still correct'"


@pytest.mark.parametrize("language", ["de", "en"])
def test_pause_ending_is_a_service_note_with_links_to_extend_the_pause_and_change_topics(stack, language):
    import datetime as dt

    from tests.integration.test_pause_notes import pause, run_notes, subscriber

    kim = subscriber(stack, "kim@example.com", language)
    stack.request("PATCH", f"/api/profiles/{kim['id']}", {"fields": {"first_name": HOSTILE}})
    pause(stack, kim, dt.datetime.now(dt.UTC) + dt.timedelta(days=2))
    assert run_notes(stack) == {"sent": 1}
    [message] = read_back(stack)
    check_structure(message, to="kim@example.com", language=language, email_type="pause_ending", marketing=False)
    html = message.get_body(("html",)).get_content()
    assert "<b onmouseover" not in html
    assert "&lt;b onmouseover=" in html
    text_links, html_links = links(message)
    assert text_links == html_links
    extend, topics = text_links
    assert extend.endswith("&next=/communication#pause")
    assert topics.endswith("&next=/communication")
    for link in (extend, topics):
        check_link(stack, link.removesuffix("#pause"), Purpose.MANAGE, kim["id"])
