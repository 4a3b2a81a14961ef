"""Small journeys on a 360 px phone, in German and English, in a real browser (Debian's Chromium).

The footer's legal links on every kind of page, tables and menu that fit the screen without
breaking a word, the error summary that takes the focus after a failed submit, and the text box
for "something else" when leaving. Screenshots go to test-artifacts/journeys/ (360 px, and 1280 px
for the tables and the menu).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, BrowserContext, Page, expect

from selfservice.catalog import load_catalog
from selfservice.settings import DEVELOPMENT_TOKEN_SECRET
from selfservice.tokens import Purpose, TokenSigner
from tests.e2e.accessibility import Recorder
from tests.e2e.conftest import REPO, LocalStack
from tests.e2e.test_browser import link_from_outbox

ARTIFACTS = REPO / "test-artifacts" / "journeys"
CATALOG = load_catalog(REPO / "templates" / "catalog.yaml")
PHONE = {"width": 360, "height": 780}
DESKTOP = {"width": 1280, "height": 900}
# One demo customer per language and journey, so the journeys do not change each other's data.
CUSTOMERS = {
    "tables": {"de": "anna.schmidt@example.com", "en": "david.jones@example.com"},
    "errors": {"de": "clara.weber@example.com", "en": "ben.miller@example.com"},
    "leave": {"de": "eva.fischer@example.com", "en": "david.jones@example.com"},
}
pytestmark = [pytest.mark.e2e, pytest.mark.browser]

# Every word of these elements lies on one line: a word broken inside ("Datu|m") has two line boxes.
WORDS_BROKEN_INSIDE = """selector => {
  const broken = [];
  for (const element of document.querySelectorAll(selector)) {
    const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const match of node.textContent.matchAll(/\\S+/g)) {
        const range = document.createRange();
        range.setStart(node, match.index);
        range.setEnd(node, match.index + match[0].length);
        const lines = new Set([...range.getClientRects()].map(rect => Math.round(rect.top)));
        if (lines.size > 1) broken.push(match[0]);
      }
    }
  }
  return broken;
}"""


def shoot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def no_horizontal_scroll(page: Page, width: int) -> bool:
    return bool(page.evaluate(f"document.documentElement.scrollWidth <= {width}"))


@pytest.fixture
def new_context(browser: Browser) -> Iterator[Any]:
    contexts: list[BrowserContext] = []

    def make(language: str, viewport: dict[str, int] = PHONE) -> Page:
        context = browser.new_context(
            viewport=viewport, locale=language, extra_http_headers={"Accept-Language": language}
        )
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def signed_in(page: Page, stack: LocalStack, address: str, language: str) -> None:
    page.goto(link_from_outbox(stack, address))
    if page.locator("html").get_attribute("lang") != language:
        page.get_by_role("button", name=re.compile("^(English|Deutsch)$")).click()
    assert page.locator("html").get_attribute("lang") == language


def expect_legal_footer(page: Page, language: str) -> None:
    footer = page.get_by_role("contentinfo")
    imprint, privacy = ("Impressum", "Datenschutzerklärung") if language == "de" else ("Legal notice", "Privacy policy")
    company = CATALOG.company
    expect(footer.get_by_role("link", name=imprint)).to_have_attribute("href", company.imprint_url.get(language))
    expect(footer.get_by_role("link", name=privacy)).to_have_attribute("href", company.privacy_policy_url.get(language))
    expect(footer.get_by_role("link", name=imprint)).to_be_visible()


@pytest.mark.parametrize("language", ["de", "en"])
def test_every_kind_of_page_has_imprint_and_privacy_policy_in_its_footer(
    local_stack: LocalStack, new_context, language: str
):
    page = new_context(language)
    for path, name in [("/subscribe", "subscribe"), ("/no-such-page", "not-found"), ("/profile", "sign-in-needed")]:
        page.goto(local_stack.http + path)
        expect_legal_footer(page, language)
        shoot(page, f"footer-{name}.{language}.360")
        if name == "not-found":
            expect(page.get_by_role("link", name=re.compile("start page|Startseite"))).to_be_visible()

    signed_in(page, local_stack, CUSTOMERS["tables"][language], language)
    for path in ("/", "/history", "/no-such-page"):
        page.goto(local_stack.http + path)
        expect_legal_footer(page, language)
    expect(page.get_by_role("navigation")).to_be_visible()  # the 404 page has the menu it points to
    shoot(page, f"footer-not-found-signed-in.{language}.360")


@pytest.mark.parametrize("language", ["de", "en"])
def test_requests_history_and_menu_fit_a_phone_without_breaking_a_word(
    local_stack: LocalStack, new_context, language: str, accessibility: Recorder
):
    page = new_context(language)
    signed_in(page, local_stack, CUSTOMERS["tables"][language], language)
    for request_type, message in [
        ("address_change", "Neue Anschrift: Hauptstraße 1, 20095 Hamburg. https://example.com/a/very/long/path/x"),
        ("data_request", "Bitte senden Sie mir eine Kopie meiner Daten."),
    ]:
        page.goto(local_stack.http + "/requests")
        page.locator("#type").select_option(request_type)
        page.locator("#message").fill(message)
        page.locator("form.card button[type=submit]").click()
        expect(page.get_by_role("status")).to_be_visible()
    page.goto(local_stack.http + "/profile")
    page.locator("#street").fill("Große Bergstraße 12")
    page.locator("form.card button[type=submit]").click()

    axe = Axe()
    for path in ("/requests", "/history"):
        page.goto(local_stack.http + path)
        name = path.strip("/")
        shoot(page, f"{name}.{language}.360")
        assert no_horizontal_scroll(page, 360), f"{path} scrolls sideways at 360 px ({language})"
        broken = page.evaluate(
            WORDS_BROKEN_INSIDE, "table.records th, table.records td.when, table.records .record-title, .status"
        )
        assert broken == [], f"{path}: words broken inside at 360 px ({language}): {broken}"
        for date in page.locator("table.records td.when time").all():
            box = date.bounding_box()
            assert box is not None
            assert box["height"] < 30, f"{path}: the date {date.inner_text()!r} wraps"
        serious = [
            f"{v['id']}: {v['help']}"
            for v in accessibility.axe(axe, page, path, language)["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        assert serious == [], f"{path} ({language})"

    # The menu: one row before the content, sideways scrolling for the rest, every link reachable by keyboard.
    menu = page.get_by_role("navigation")
    items = menu.get_by_role("listitem").all()
    assert len({round(item.bounding_box()["y"]) for item in items}) == 1, "the menu is one row"
    assert menu.bounding_box()["height"] < 60
    assert page.locator("h1").bounding_box()["y"] < 180, "the content starts right below the menu"
    last = menu.get_by_role("link").last
    with accessibility.keyboard("menu_by_keyboard", "/history", language):
        page.locator("body").focus()
        for _ in range(20):
            page.keyboard.press("Tab")
            if last.evaluate("link => link === document.activeElement"):
                break
        else:
            pytest.fail("the last menu item cannot be reached with the Tab key")
        box, row = last.bounding_box(), menu.locator("ul").bounding_box()
        assert row["x"] <= box["x"], "the focused item is shown"
        assert box["x"] + box["width"] <= row["x"] + row["width"] + 1, "the focused item is shown"
        assert no_horizontal_scroll(page, 360)
    shoot(page, f"menu-keyboard.{language}.360")

    desktop = new_context(language, DESKTOP)
    signed_in(desktop, local_stack, CUSTOMERS["tables"][language], language)
    for path in ("/requests", "/history"):
        desktop.goto(local_stack.http + path)
        shoot(desktop, f"{path.strip('/')}.{language}.1280")
        assert no_horizontal_scroll(desktop, 1280)
        desktop_menu = desktop.get_by_role("navigation")
        rows = {round(item.bounding_box()["y"]) for item in desktop_menu.get_by_role("listitem").all()}
        assert len(rows) == 1, "the whole menu is one row at 1280 px"
        assert desktop.evaluate("(u => u.scrollWidth <= u.clientWidth)(document.querySelector('nav.sections ul'))")
        assert desktop.evaluate(WORDS_BROKEN_INSIDE, "table.records th, table.records td.when") == []


@pytest.mark.parametrize("language", ["de", "en"])
def test_after_a_failed_submit_the_focus_is_on_the_error_summary(
    local_stack: LocalStack, new_context, language: str, accessibility: Recorder
):
    page = new_context(language)
    signed_in(page, local_stack, CUSTOMERS["errors"][language], language)
    page.goto(local_stack.http + "/profile")
    with accessibility.keyboard("error_summary_focus", "/profile", language):
        page.locator("#first_name").fill("")  # asked for, never refused: not in the summary
        page.locator("#postal_code").fill("!")
        page.locator("form.card button[type=submit]").click()

        summary = page.locator("#error-summary")
        expect(summary).to_be_focused()
        expect(summary).to_have_attribute("tabindex", "-1")
        postal_code = CATALOG.field("postal_code").label.get(language)
        expect(summary.get_by_role("link", name=re.compile(postal_code))).to_be_visible()
        expect(summary.get_by_role("link")).to_have_count(1)
        expect(page.locator("#postal_code")).to_have_attribute("aria-invalid", "true")
        shoot(page, f"error-summary-profile.{language}.360")
        summary.get_by_role("link", name=re.compile(postal_code)).click()
        expect(page.locator("#postal_code")).to_be_focused()

    page.goto(local_stack.http + "/requests")
    with accessibility.keyboard("error_summary_focus", "/requests", language):
        page.locator("form.card button[type=submit]").click()
        expect(page.locator("#error-summary")).to_be_focused()
        page.locator("#error-summary a").first.press("Enter")
        expect(page.locator("#message")).to_be_focused()
    shoot(page, f"error-summary-requests.{language}.360")


def unsubscribe_link(stack: LocalStack, address: str) -> str:
    found = requests.get(f"{stack.http}/api/profiles", params={"email": address}, timeout=10).json()
    token = TokenSigner([DEVELOPMENT_TOKEN_SECRET]).issue(found["id"], 0, Purpose.UNSUBSCRIBE)
    return f"{stack.http}/unsubscribe?token={token}"


@pytest.mark.parametrize("language", ["de", "en"])
def test_something_else_opens_a_text_box_whose_words_are_kept_with_the_unsubscription(
    local_stack: LocalStack, new_context, language: str
):
    address = CUSTOMERS["leave"][language]
    page = new_context(language)
    page.goto(unsubscribe_link(local_stack, address))
    if page.locator("html").get_attribute("lang") != language:
        page.get_by_role("button", name=re.compile("^(English|Deutsch)$")).click()
    box = page.locator("#reason_text")
    expect(box).to_be_hidden()
    page.locator("#reason").select_option("too_many")
    expect(box).to_be_hidden()
    page.locator("#reason").select_option("other")
    expect(box).to_be_visible()
    expect(box).to_have_attribute("maxlength", "500")
    label = "Something else? In your own words (optional)" if language == "en" else "Etwas anderes?"
    page.get_by_label(re.compile(re.escape(label))).fill(f"Too much mail ({language}).")
    assert no_horizontal_scroll(page, 360)
    shoot(page, f"unsubscribe-something-else.{language}.360")
    page.locator("button[value=leave]").click()
    expect(page.locator("h1")).to_have_text("You are unsubscribed" if language == "en" else "Sie sind abgemeldet")

    found = requests.get(f"{local_stack.http}/api/profiles", params={"email": address}, timeout=10).json()
    history = requests.get(f"{local_stack.http}/api/profiles/{found['id']}/history", timeout=10).json()["entries"]
    withdrawn = next(entry for entry in history if entry["kind"] == "consent_withdrawn")
    assert withdrawn["detail"]["reason"] == "other"
    assert withdrawn["detail"]["reason_text"] == f"Too much mail ({language})."
    assert f"Too much mail ({language})" not in local_stack.output(), "the customer's words are never logged"
