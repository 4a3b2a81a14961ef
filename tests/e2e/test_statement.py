"""The accessibility statement in a real browser (Debian's Chromium), German and English: reached by
the footer link of every page, it lists the checks the test suite ran (its results file), and its
feedback form, used with the keyboard alone, sends customer service a request of type accessibility.
Screenshots go to test-artifacts/statement/."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, BrowserContext, Page, expect

from selfservice.accessibility import Results
from selfservice.catalog import load_catalog
from selfservice.web.views import SIGNED_IN_PAGES
from tests.e2e.accessibility import RESULTS, Recorder
from tests.e2e.conftest import REPO, LocalStack
from tests.e2e.test_phone_journeys import PHONE, signed_in

ARTIFACTS = REPO / "test-artifacts" / "statement"
CATALOG = load_catalog(REPO / "templates" / "catalog.yaml")
TITLE = {"de": "Erklärung zur Barrierefreiheit", "en": "Accessibility statement"}
CUSTOMER = {"de": "anna.schmidt@example.com", "en": "david.jones@example.com"}
ANONYMOUS_PAGES = ("/subscribe", "/new-link", "/no-such-page", "/profile", "/link?token=broken")
pytestmark = [pytest.mark.e2e, pytest.mark.browser]


@pytest.fixture
def new_context(browser: Browser) -> Iterator[Any]:
    contexts: list[BrowserContext] = []

    def make(language: str) -> Page:
        context = browser.new_context(viewport=PHONE, locale=language, extra_http_headers={"Accept-Language": language})
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def shoot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def follow_footer_link(page: Page, stack: LocalStack, path: str, language: str) -> None:
    page.goto(stack.http + path)
    link = page.get_by_role("contentinfo").get_by_role("link", name=TITLE[language], exact=True)
    expect(link).to_be_visible()
    link.click()
    expect(page.locator("h1")).to_have_text(TITLE[language])
    assert page.url == f"{stack.http}/accessibility", f"the footer of {path} leads elsewhere: {page.url}"


@pytest.mark.parametrize("language", ["de", "en"])
def test_every_page_links_the_statement_which_lists_the_checks_that_ran(
    local_stack: LocalStack, new_context, language: str, accessibility: Recorder
):
    page = new_context(language)
    for path in ANONYMOUS_PAGES:
        follow_footer_link(page, local_stack, path, language)
    signed_in(page, local_stack, CUSTOMER[language], language)
    for path in SIGNED_IN_PAGES:
        follow_footer_link(page, local_stack, path, language)
    expect(page.get_by_role("navigation")).to_be_visible()  # signed in, the statement keeps the menu

    # by keyboard: Tab from the top of a page to the footer link, Enter opens the statement
    page.goto(local_stack.http + "/")
    with accessibility.keyboard("footer_link_by_keyboard", "/", language):
        page.locator("body").focus()
        link = page.get_by_role("contentinfo").get_by_role("link", name=TITLE[language], exact=True)
        for _ in range(80):
            page.keyboard.press("Tab")
            if link.evaluate("link => link === document.activeElement"):
                break
        else:
            pytest.fail("the footer's link to the accessibility statement cannot be reached with the Tab key")
        page.keyboard.press("Enter")
        expect(page.locator("h1")).to_have_text(TITLE[language])

    violations = accessibility.axe(Axe(), page, "/accessibility", language)["violations"]
    assert [v["id"] for v in violations if v["impact"] in ("serious", "critical")] == []

    # the statement lists exactly the checks in the results file (this run's, the one just made included)
    page.reload()
    shoot(page, f"statement.{language}.360")
    results = Results.model_validate(json.loads(RESULTS.read_text(encoding="utf-8")))
    groups = {(check.name, check.page) for check in results.checks}
    assert ("axe", "/accessibility") in groups
    rows = page.locator("table.checks tbody tr")
    expect(rows).to_have_count(len(groups))
    pages_listed = {row.locator("code").inner_text() for row in rows.all()}
    assert pages_listed == {check_page for _name, check_page in groups}
    expect(page.get_by_text(re.compile(rf"axe-core {re.escape(results.axe_version)}"))).to_be_visible()
    status = "teilweise" if language == "de" else "partially conformant"
    expect(page.get_by_role("region", name=re.compile("Stand|How accessible"))).to_contain_text(status)
    for limitation in CATALOG.company.accessibility.known_limitations:
        expect(page.get_by_text(limitation.get(language))).to_be_visible()
    enforcement = CATALOG.company.accessibility.enforcement
    expect(page.locator("address")).to_contain_text(enforcement.name.get(language))
    expect(page.locator("address").get_by_role("link", name=enforcement.email)).to_be_visible()


def requests_of_type_accessibility(stack: LocalStack) -> list[dict]:
    answer = requests.get(f"{stack.http}/api/requests", params={"type": "accessibility", "limit": 100}, timeout=10)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["items"])


def wait_for_mail(stack: LocalStack, text: str) -> dict:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        outbox = requests.get(f"{stack.http}/_dev/api/outbox", timeout=10).json()
        found = [mail for mail in outbox if text in (mail["text"] or "")]
        if found:
            return dict(found[0])
        time.sleep(0.2)
    pytest.fail(f"no email with {text!r} in the outbox")


@pytest.mark.parametrize("language", ["de", "en"])
def test_the_feedback_form_sends_a_request_by_keyboard_alone(
    local_stack: LocalStack, new_context, language: str, accessibility: Recorder
):
    page = new_context(language)
    page.goto(local_stack.http + "/accessibility")
    message = f"The error messages are not read out ({language})."
    with accessibility.keyboard("feedback_by_keyboard", "/accessibility", language):
        page.locator("body").focus()
        for _ in range(60):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.id") == "message":
                break
        else:
            pytest.fail("the message field cannot be reached with the Tab key")
        page.keyboard.type(message)
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == "email"
        page.keyboard.type("reader@example.org")
        page.keyboard.press("Tab")
        page.keyboard.press("Enter")
        expect(page.get_by_role("status")).to_be_visible()
    expect(page.get_by_role("status")).to_have_text(
        "Vielen Dank! Ihre Nachricht ist bei unserem Kundenservice eingegangen."
        if language == "de"
        else "Thank you! Your message has gone to our customer service."
    )
    shoot(page, f"feedback-sent.{language}.360")
    [stored] = [r for r in requests_of_type_accessibility(local_stack) if r["message"] == message]
    assert stored["status"] == "open"
    mail = wait_for_mail(local_stack, message)
    assert mail["headers"].get("Reply-To") == "reader@example.org", "customer service answers the sender"

    # an empty message is asked for next to the field, and nothing is sent
    before = len(requests_of_type_accessibility(local_stack))
    page.get_by_role("button", name="Nachricht senden" if language == "de" else "Send message").click()
    expect(page.locator("#error-summary")).to_be_focused()
    expect(page.locator("#message")).to_have_attribute("aria-invalid", "true")
    assert len(requests_of_type_accessibility(local_stack)) == before

    # signed in, the message is the customer's own request, on their requests page
    signed_in(page, local_stack, CUSTOMER[language], language)
    page.goto(local_stack.http + "/accessibility")
    expect(page.locator("#email")).to_have_count(0)
    own = f"The date field is hard to use ({language})."
    page.locator("#message").fill(own)
    page.get_by_role("button", name="Nachricht senden" if language == "de" else "Send message").click()
    expect(page.get_by_role("status")).to_be_visible()
    page.goto(local_stack.http + "/requests")
    expect(page.get_by_role("cell", name=re.compile(re.escape(own)))).to_be_visible()
    label = CATALOG.request_type("accessibility").label.get(language)
    expect(page.get_by_role("cell", name=re.compile(re.escape(label))).first).to_be_visible()
