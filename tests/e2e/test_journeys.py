"""Customer journeys around the subscription and the profile, in a real browser at 360 px, in German
and English: leaving everything and subscribing again, a pending confirmation sent again, required
fields that are asked for but never block saving, and the language switch that keeps what was typed
and becomes the language of the emails. Screenshots: test-artifacts/journeys/."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import REPO, LocalStack
from tests.e2e.test_review_local import EVENT_ARN, executions, review_emails

SHOTS = REPO / "test-artifacts" / "journeys"
pytestmark = [pytest.mark.e2e, pytest.mark.browser]

TEXT = {
    "de": {
        "leave": "Von allem abmelden",
        "no_newsletter": "Sie erhalten keine Newsletter.",
        "again": "Wieder abonnieren",
        "left": "Sie sind von allen Newslettern abgemeldet",
        "confirm_sent": "Wir haben Ihnen eine E-Mail gesendet",
        "confirm_button": "Ja, ich möchte diese Newsletter",
        "news": "^Neuigkeiten",
        "communication": "Kommunikation",
        "resend": "Bestätigungs-E-Mail noch einmal senden",
        "waiting": "Wir haben eine E-Mail zur Bestätigung",
        "add_missing": "Fehlende Angaben ergänzen",
        "first_name": "Vorname",
        "save": "Speichern",
        "still_need": "Es fehlt uns noch: Nachname, Ort.",
        "phone": "Mobilnummer",
        "other": "English",
        "hello": "Hallo",
        "city": "Ort",
        "stored_now": "Jetzt gespeichert: Leipzig",
        "yes_delete": "Ja, alles löschen",
    },
    "en": {
        "leave": "Unsubscribe from everything",
        "no_newsletter": "You do not receive any newsletter.",
        "again": "Subscribe again",
        "left": "You are unsubscribed from every newsletter",
        "confirm_sent": "We have sent you an email",
        "confirm_button": "Yes, I want these newsletters",
        "news": "^News",
        "communication": "Communication",
        "resend": "Send the confirmation email again",
        "waiting": "We have sent a confirmation email",
        "add_missing": "Add the missing data",
        "first_name": "First name",
        "save": "Save",
        "still_need": "We still need: Last name, City.",
        "phone": "Mobile number",
        "other": "Deutsch",
        "hello": "Hello",
        "city": "City",
        "stored_now": "Stored now: Leipzig",
        "yes_delete": "Yes, delete everything",
    },
}


@pytest.fixture(params=["de", "en"])
def language(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def phone(browser: Browser, language: str) -> Iterator[Page]:
    context = browser.new_context(
        viewport={"width": 360, "height": 780}, locale=language, extra_http_headers={"Accept-Language": language}
    )
    page = context.new_page()
    yield page
    context.close()


def shot(page: Page, name: str, language: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.{language}.360.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), f"{name} overflows at 360 px"


def api(stack: LocalStack, method: str, path: str, **kwargs: Any) -> requests.Response:
    return requests.request(method, f"{stack.http}{path}", timeout=10, **kwargs)


def outbox(stack: LocalStack, address: str) -> list[dict[str, Any]]:
    """The emails to ``address``, newest first."""
    return [m for m in api(stack, "GET", "/_dev/api/outbox").json() if address in m["to"]]


def mailed_link(stack: LocalStack, address: str, path: str, count: int = 1, timeout: float = 30) -> str:
    """The link to ``path`` in the newest email to ``address`` once ``count`` such emails arrived
    (the address forms send after the page has answered)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [m for m in outbox(stack, address) if f"{path}?token=" in m["html"]]
        if len(found) >= count:
            return link_in(found[0], path)
        assert time.monotonic() < deadline, f"no email with {path} to {address}"
        time.sleep(0.2)


def link_in(mail: dict[str, Any], path: str) -> str:
    found = re.search(rf'href="(http://[^"]+{re.escape(path)}\?token=[^"]+)"', mail["html"])
    assert found, mail["subject"]
    return found.group(1).replace("&amp;", "&")


def new_address(name: str) -> str:
    return f"{name}.{uuid.uuid4().hex[:8]}@example.com"


def customer(stack: LocalStack, language: str, **body: Any) -> tuple[str, str]:
    """A profile created through the API, and the self-service link emailed to it."""
    address = new_address("kunde")
    created = api(stack, "POST", "/api/profiles", json={"email": address, "locale": language, **body})
    assert created.status_code == 201, created.text
    profile_id = created.json()["id"]
    assert api(stack, "POST", f"/api/profiles/{profile_id}/self-service-link").status_code == 202
    return address, link_in(outbox(stack, address)[0], "/link")


def subscribed_customer(stack: LocalStack, page: Page, language: str) -> str:
    """Subscribes on the public form and confirms from the email; returns the address."""
    address = new_address("abo")
    page.goto(f"{stack.http}/subscribe")
    page.get_by_role("textbox").first.fill(address)
    page.get_by_role("checkbox", name=re.compile(TEXT[language]["news"])).check()
    page.locator("form#page-form button[type=submit]").click()
    page.goto(mailed_link(stack, address, "/confirm"))
    page.get_by_role("button", name=TEXT[language]["confirm_button"]).click()
    return address


def test_leaving_everything_and_subscribing_again_by_double_opt_in(local_stack: LocalStack, phone: Page, language: str):
    t = TEXT[language]
    address = subscribed_customer(local_stack, phone, language)
    phone.goto(f"{local_stack.http}/communication")
    shot(phone, "communication-subscribed", language)
    phone.get_by_role("button", name=t["leave"]).click()
    expect(phone.get_by_role("status")).to_contain_text(t["left"])
    shot(phone, "communication-left", language)
    phone.goto(f"{local_stack.http}/")
    expect(phone.get_by_text(t["no_newsletter"])).to_be_visible()
    shot(phone, "overview-not-subscribed", language)

    phone.get_by_role("link", name=t["again"]).click()
    phone.locator("#subscribe").get_by_role("checkbox", name=re.compile(t["news"])).check()
    phone.get_by_role("button", name=t["again"]).click()
    expect(phone.get_by_role("status")).to_contain_text(t["confirm_sent"])
    profile = api(local_stack, "GET", "/api/profiles", params={"email": address}).json()
    assert not any(profile["preferences"]["topics"].values()) or profile["status"] != "subscribed"

    phone.goto(mailed_link(local_stack, address, "/confirm", count=2))
    phone.get_by_role("button", name=t["confirm_button"]).click()
    expect(phone.get_by_text(t["no_newsletter"])).to_have_count(0)
    shot(phone, "overview-subscribed-again", language)
    profile = api(local_stack, "GET", "/api/profiles", params={"email": address}).json()
    assert profile["status"] == "subscribed"
    assert profile["preferences"]["topics"]["news"] is True


def test_a_pending_customer_sends_the_confirmation_again(local_stack: LocalStack, phone: Page, language: str):
    t = TEXT[language]
    address = new_address("wartet")
    phone.goto(f"{local_stack.http}/subscribe")
    phone.get_by_role("textbox").first.fill(address)
    phone.get_by_role("checkbox", name=re.compile(t["news"])).check()
    phone.locator("form#page-form button[type=submit]").click()
    mailed_link(local_stack, address, "/confirm")  # the pending profile exists once its email is out
    profile = api(local_stack, "GET", "/api/profiles", params={"email": address}).json()
    assert api(local_stack, "POST", f"/api/profiles/{profile['id']}/self-service-link").status_code == 202
    phone.goto(mailed_link(local_stack, address, "/link"))
    expect(phone.get_by_text(re.compile(t["waiting"]))).to_be_visible()
    shot(phone, "overview-pending", language)
    confirmations = len([m for m in outbox(local_stack, address) if "/confirm?token=" in m["html"]])
    phone.get_by_role("button", name=t["resend"]).click()
    expect(phone.get_by_role("status")).to_contain_text(t["confirm_sent"])
    resent = len([m for m in outbox(local_stack, address) if "/confirm?token=" in m["html"]])
    assert resent == confirmations + 1, "the signed-in owner gets the email again"


def test_required_fields_are_asked_for_and_never_block_saving(local_stack: LocalStack, phone: Page, language: str):
    t = TEXT[language]
    address, link = customer(local_stack, language)
    phone.goto(link)
    shot(phone, "overview-missing-fields", language)
    phone.get_by_role("link", name=t["add_missing"]).click()
    phone.get_by_label(t["first_name"]).fill("Mia")
    phone.get_by_role("button", name=t["save"]).click()
    expect(phone.locator("#missing-notice")).to_have_text(re.compile(re.escape(t["still_need"])))
    shot(phone, "profile-saved-missing", language)
    fields = api(local_stack, "GET", "/api/profiles", params={"email": address}).json()["fields"]
    assert fields["first_name"]["value"] == "Mia"


def test_the_language_switch_keeps_what_was_typed_and_changes_the_emails(
    local_stack: LocalStack, phone: Page, language: str
):
    t = TEXT[language]
    other = "en" if language == "de" else "de"
    address, link = customer(local_stack, language)
    phone.goto(link)
    phone.goto(f"{local_stack.http}/profile")
    phone.get_by_label(t["first_name"]).fill("Jonas")
    phone.get_by_label(re.compile(t["phone"])).fill("0151")
    phone.get_by_role("button", name=t["save"]).click()
    expect(phone.locator("#phone-error")).to_be_visible()
    phone.get_by_role("button", name=t["other"]).click()
    expect(phone.locator("html")).to_have_attribute("lang", other)
    expect(phone.get_by_label(TEXT[other]["first_name"])).to_have_value("Jonas")
    expect(phone.locator("#phone-error")).to_be_visible()
    shot(phone, "profile-switched-language-with-errors", language)
    profile = api(local_stack, "GET", "/api/profiles", params={"email": address}).json()
    assert profile["locale"] == other
    assert "first_name" not in profile["fields"], "nothing but the language was saved"
    assert api(local_stack, "POST", f"/api/profiles/{profile['id']}/self-service-link").status_code == 202
    assert outbox(local_stack, address)[0]["text"].startswith(TEXT[other]["hello"])


def test_a_new_subscriber_is_not_asked_for_a_review_after_a_purchase(
    local_stack: LocalStack, phone: Page, language: str
):
    address = subscribed_customer(local_stack, phone, language)
    profile_id = api(local_stack, "GET", "/api/profiles", params={"email": address}).json()["id"]
    before = len(local_stack.client("stepfunctions").list_executions(stateMachineArn=EVENT_ARN)["executions"])
    assert api(local_stack, "POST", "/_dev/api/purchase", json={"email": address}).status_code == 200
    outputs = [json.loads(run["output"]) for run in executions(local_stack, EVENT_ARN, before + 1) if "output" in run]
    [mine] = [output for output in outputs if output.get("profileId") == profile_id]
    assert mine == {"outcome": "skipped", "reason": "new_subscriber", "profileId": profile_id}
    assert address not in review_emails(local_stack), "no 'is your information still up to date?' yet"


def test_a_stale_second_tab_keeps_what_was_typed_next_to_what_is_stored(
    local_stack: LocalStack, browser: Browser, language: str
):
    t = TEXT[language]
    address, link = customer(local_stack, language)
    context = browser.new_context(viewport={"width": 360, "height": 780}, locale=language)
    first, second = context.new_page(), context.new_page()
    first.goto(link)
    first.goto(f"{local_stack.http}/profile")
    second.goto(f"{local_stack.http}/profile")
    second.get_by_label(t["city"]).fill("Leipzig")
    second.get_by_role("button", name=t["save"]).click()
    first.get_by_label(t["city"]).fill("Dresden")
    first.get_by_role("button", name=t["save"]).click()
    expect(first.get_by_label(t["city"])).to_have_value("Dresden")
    expect(first.get_by_text(t["stored_now"])).to_be_visible()
    shot(first, "profile-stale-tab", language)
    first.get_by_role("button", name=t["save"]).click()  # saving again applies to the new version
    expect(first.get_by_role("status")).to_be_visible()
    profile = api(local_stack, "GET", "/api/profiles", params={"email": address}).json()
    assert profile["fields"]["city"]["value"] == "Dresden"
    context.close()


def test_subscribing_a_known_address_changes_nothing_until_its_owner_confirms(
    local_stack: LocalStack, phone: Page, language: str
):
    t = TEXT[language]
    address, _link = customer(local_stack, language)  # a shop customer without newsletter consent
    before = api(local_stack, "GET", "/api/profiles", params={"email": address}).json()
    phone.goto(f"{local_stack.http}/subscribe")
    phone.get_by_role("textbox").first.fill(address)
    phone.get_by_role("checkbox", name=re.compile(t["news"])).check()
    phone.locator("form#page-form button[type=submit]").click()
    confirm = mailed_link(local_stack, address, "/confirm")
    assert api(local_stack, "GET", "/api/profiles", params={"email": address}).json() == before, "nothing changed"
    phone.goto(confirm)
    shot(phone, "confirm-known-address", language)
    phone.get_by_role("button", name=t["confirm_button"]).click()
    after = api(local_stack, "GET", "/api/profiles", params={"email": address}).json()
    assert after["status"] == "subscribed"
    assert after["preferences"]["topics"] == {"news": True}


def test_a_customer_who_deleted_their_profile_can_subscribe_again(local_stack: LocalStack, phone: Page, language: str):
    t = TEXT[language]
    address, link = customer(local_stack, language)
    phone.goto(link)
    phone.goto(f"{local_stack.http}/privacy/delete")
    phone.get_by_role("button", name=t["yes_delete"]).click()
    assert api(local_stack, "GET", "/api/profiles", params={"email": address}).status_code == 404
    phone.goto(f"{local_stack.http}/subscribe")
    phone.get_by_role("textbox").first.fill(address)
    phone.get_by_role("checkbox", name=re.compile(t["news"])).check()
    phone.locator("form#page-form button[type=submit]").click()
    phone.goto(mailed_link(local_stack, address, "/confirm"))
    phone.get_by_role("button", name=t["confirm_button"]).click()
    shot(phone, "subscribed-after-deletion", language)
    profile = api(local_stack, "GET", "/api/profiles", params={"email": address}).json()
    assert profile["status"] == "subscribed"
