"""A customer in a real browser (Debian's headless Chromium, driven by Playwright).

From the link in an email in the outbox through every page; after each step the customer sees the
change on the page and an API client reads it back through the JSON API (`/api/profiles/{id}`).
Every page is checked with axe-core in both languages and photographed at 360 px width
(test-artifacts/screenshots/).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect

from selfservice.web.views import SIGNED_IN_PAGES
from tests.e2e.accessibility import Recorder
from tests.e2e.conftest import REPO, LocalStack

SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
PAGES = SIGNED_IN_PAGES
pytestmark = [pytest.mark.e2e, pytest.mark.browser]


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 360, "height": 780}, accept_downloads=True)
    page = context.new_page()
    yield page
    context.close()


def link_from_outbox(stack: LocalStack, address: str) -> str:
    profile = requests.get(f"{stack.http}/api/profiles", params={"email": address}, timeout=10).json()
    assert requests.post(f"{stack.http}/api/profiles/{profile['id']}/self-service-link", timeout=10).status_code == 202
    outbox = requests.get(f"{stack.http}/_dev/api/outbox", timeout=10).json()
    mail = next(m for m in outbox if address in m["to"])
    return re.search(r'href="(http://[^"]+/link\?token=[^"]+)"', mail["html"]).group(1).replace("&amp;", "&")


def api_profile(stack: LocalStack, address: str) -> dict[str, Any]:
    """The profile as the JSON API shows it to the shop or customer service."""
    answer = requests.get(f"{stack.http}/api/profiles", params={"email": address}, timeout=10)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def no_horizontal_overflow(page: Page) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def test_customer_walks_through_every_step_from_the_email_link(local_stack: LocalStack, phone: Page):
    address = "ben.miller@example.com"
    profile_id = api_profile(local_stack, address)["id"]
    phone.goto(link_from_outbox(local_stack, address))
    expect(phone.locator("h1")).to_have_text("Hello Ben")
    assert "token=" not in phone.url, "the token leaves the address bar"

    # a field
    phone.get_by_role("link", name="Personal data").click()
    phone.get_by_label("Last name").fill("Miller")
    phone.get_by_label("City").fill("Manchester")
    phone.get_by_role("button", name="Save").click()
    expect(phone.get_by_role("status")).to_have_text("Saved.")
    phone.reload()
    expect(phone.get_by_label("City")).to_have_value("Manchester")
    expect(phone.get_by_label("Last name")).to_have_value("Miller")
    fields = api_profile(local_stack, address)["fields"]
    assert fields["city"]["value"] == "Manchester"
    assert fields["last_name"]["value"] == "Miller"

    # a topic, the frequency, a pause
    phone.get_by_role("link", name="Communication").click()
    phone.get_by_role("checkbox", name=re.compile("^News")).check()
    phone.get_by_role("radio", name="Monthly").check()
    phone.get_by_label("Pause all newsletters for").select_option("4")
    phone.get_by_role("button", name="Save").click()
    expect(phone.get_by_role("status")).to_have_text("Saved.")
    expect(phone.get_by_text(re.compile("Paused until"))).to_be_visible()
    expect(phone.get_by_role("checkbox", name=re.compile("^News"))).to_be_checked()
    expect(phone.get_by_role("radio", name="Monthly")).to_be_checked()
    preferences = api_profile(local_stack, address)["preferences"]
    assert preferences["topics"]["news"] is True
    assert preferences["frequency"] == "monthly"
    assert preferences["paused_until"]

    # a service
    phone.get_by_role("link", name="Services").click()
    yearly = phone.get_by_role("group", name="Delivery Plus").get_by_label("Yearly (2 months free)")
    yearly.check()
    phone.get_by_role("button", name="Save").click()
    expect(phone.get_by_role("status")).to_have_text("Saved.")
    expect(yearly).to_be_checked()
    assert api_profile(local_stack, address)["services"]["delivery_plus"]["option"] == "yearly"

    # a request
    phone.get_by_role("link", name="Requests").click()
    phone.get_by_label("What is it about?").select_option("question")
    phone.get_by_label("Your message").fill("Can I change my delivery day?")
    phone.get_by_role("button", name="Send request").click()
    expect(phone.get_by_role("status")).to_have_text("Thank you! We have received your request.")
    expect(phone.get_by_role("cell", name=re.compile("Can I change my delivery day"))).to_be_visible()

    # the history shows what happened, in words; the API's history has the same changes
    phone.get_by_role("link", name="History").click()
    expect(phone.get_by_text("City: – → Manchester")).to_be_visible()
    history = requests.get(f"{local_stack.http}/api/profiles/{profile_id}/history", timeout=10).json()["entries"]
    cities = [
        (change["before"], change["after"])
        for entry in history
        for change in entry.get("changes") or []
        if change["field"] == "fields.city"
    ]
    assert cities == [(None, "Manchester")]

    # download the data: everything above is in it, the request included
    phone.get_by_role("link", name="Privacy", exact=True).click()
    with phone.expect_download() as download_info:
        phone.get_by_role("link", name="Download my data").click()
    document = json.loads(Path(download_info.value.path()).read_text(encoding="utf-8"))
    assert document["profile"]["fields"]["city"]["value"] == "Manchester"
    assert document["profile"]["preferences"]["frequency"] == "monthly"
    assert document["profile"]["services"]["delivery_plus"]["option"] == "yearly"
    assert [request["message"] for request in document["requests"]] == ["Can I change my delivery day?"]

    # delete the profile: gone for the customer and for every API client
    phone.get_by_role("link", name="Continue to deletion").click()
    phone.get_by_role("button", name="Yes, delete everything").click()
    expect(phone.locator("h1")).to_have_text("Your profile is deleted")
    answer = requests.get(f"{local_stack.http}/api/profiles", params={"email": address}, timeout=10)
    assert answer.status_code == 404
    assert requests.get(f"{local_stack.http}/api/profiles/{profile_id}", timeout=10).status_code == 404
    assert requests.get(f"{local_stack.http}/api/profiles/{profile_id}/history", timeout=10).status_code == 404
    assert phone.goto(f"{local_stack.http}/profile").status == 401, "the session ends with the profile"


@pytest.mark.parametrize("language", ["de", "en"])
def test_every_page_is_accessible_and_fits_a_phone(
    local_stack: LocalStack, browser: Browser, language: str, accessibility: Recorder
):
    context = browser.new_context(
        viewport={"width": 360, "height": 780}, locale=language, extra_http_headers={"Accept-Language": language}
    )
    page = context.new_page()
    external: list[str] = []
    page.on(
        "request",
        lambda request: external.append(request.url) if not request.url.startswith(local_stack.http) else None,
    )
    page.goto(link_from_outbox(local_stack, "clara.weber@example.com"))
    page.get_by_role("button", name=re.compile("English|Deutsch")).click() if (
        page.locator("html").get_attribute("lang") != language
    ) else None
    assert page.locator("html").get_attribute("lang") == language
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    axe = Axe()
    problems = []
    for path in [*PAGES, "/new-link"]:
        page.goto(local_stack.http + path)
        assert page.locator("html").get_attribute("lang") == language
        name = path.strip("/").replace("/", "-") or "overview"
        page.screenshot(path=str(SCREENSHOTS / f"{name}.{language}.360.png"), full_page=True)
        assert no_horizontal_overflow(page), f"{path} overflows horizontally at 360 px ({language})"
        for violation in accessibility.axe(axe, page, path, language)["violations"]:
            if violation["impact"] in ("serious", "critical"):
                problems.append(f"{path} [{language}] {violation['id']}: {violation['help']}")
    context.close()
    assert problems == []
    assert external == [], "no third-party requests (fonts, CDNs, trackers)"
