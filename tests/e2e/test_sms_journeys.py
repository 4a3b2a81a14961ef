"""The SMS double opt-in in a real browser (Debian's Chromium, a 360 px phone), in German and English.

SMS switched on, the code read from the local SMS outbox (``/_dev/api/sms``) and entered: the channel
is active and the consent in the history. A wrong code, an expired code, too many wrong entries and a
changed number, each with its message next to the field. Screenshots go to test-artifacts/sms/.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.e2e.conftest import REPO, LocalStack
from tests.e2e.test_browser import api_profile, link_from_outbox

ARTIFACTS = REPO / "test-artifacts" / "sms"
PHONE = {"width": 360, "height": 780}
CUSTOMERS = {"de": "anna.schmidt@example.com", "en": "david.jones@example.com"}
NUMBERS = {"de": ("+4915112340001", "+4915112340002"), "en": ("+447700900101", "+447700900102")}
TEXTS = {
    "de": {
        "sent": "Wir haben Ihnen einen Code per SMS geschickt",
        "wrong": "Dieser Code stimmt nicht.",
        "expired": "Dieser Code ist abgelaufen.",
        "used_up": "Dieser Code wurde zu oft falsch eingegeben",
        "confirmed": "Ihre Mobilnummer ist bestätigt",
        "active": "SMS gehen an Ihre bestätigte Nummer {phone}",
        "pending": "wartet auf den Code aus der SMS",
        "confirm": "Nummer bestätigen",
        "new_code": "Neuen Code senden",
        "save": "Speichern",
        "consent": "Einwilligung erteilt",
        "by_sms": "Per SMS an {phone}",
        "sms_text": r"Example Shop: Ihr Code lautet (\d{6})\. Gültig 10 Min\. Abmelden: 127\.0\.0\.1:\d+",
    },
    "en": {
        "sent": "We have sent you a code by SMS",
        "wrong": "This code is not right.",
        "expired": "This code has expired.",
        "used_up": "This code was entered wrongly too often",
        "confirmed": "Your mobile number is confirmed",
        "active": "SMS goes to your confirmed number {phone}",
        "pending": "waiting for the code from the SMS",
        "confirm": "Confirm number",
        "new_code": "Send a new code",
        "save": "Save",
        "consent": "Consent given",
        "by_sms": "By SMS to {phone}",
        "sms_text": r"Example Shop: Your code is (\d{6})\. Valid for 10 min\. Opt out: 127\.0\.0\.1:\d+",
    },
}
pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def shoot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@pytest.fixture
def phone_page(browser: Browser) -> Iterator[Any]:
    contexts: list[BrowserContext] = []

    def make(language: str) -> Page:
        context = browser.new_context(viewport=PHONE, locale=language, extra_http_headers={"Accept-Language": language})
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def sms_to(stack: LocalStack, number: str) -> list[dict[str, str]]:
    """The SMS outbox (newest first) for one number, as the console's JSON shows it."""
    outbox = requests.get(f"{stack.http}/_dev/api/sms", timeout=10).json()
    assert all(set(message) == {"to", "text", "sentAt"} for message in outbox)
    return [message for message in outbox if message["to"] == number]


def newest_code(stack: LocalStack, number: str, language: str) -> str:
    message = sms_to(stack, number)[0]
    match = re.fullmatch(TEXTS[language]["sms_text"], message["text"])
    assert match, message["text"]
    assert dt.datetime.fromisoformat(message["sentAt"]) > dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    return match.group(1)


def expire_the_code(stack: LocalStack, profile_id: str) -> None:
    """Ten minutes pass for the code (its item's expiry moves into the past)."""
    table = next(name for name in stack.client("dynamodb").list_tables()["TableNames"] if "ProfileTable" in name)
    stack.client("dynamodb").update_item(
        TableName=table,
        Key={"pk": {"S": f"PROFILE#{profile_id}"}, "sk": {"S": "SMSCODE"}},
        UpdateExpression="SET expires_at = :past",
        ExpressionAttributeValues={":past": {"N": str(int(dt.datetime.now(dt.UTC).timestamp()) - 1)}},
    )


def save_phone(page: Page, stack: LocalStack, number: str, language: str) -> None:
    page.goto(stack.http + "/profile?focus=phone")
    page.locator("#phone").fill(number)
    page.get_by_role("button", name=TEXTS[language]["save"], exact=True).click()


def enter(page: Page, code: str, language: str) -> None:
    field = page.locator("#sms_code")
    expect(field).to_have_attribute("autocomplete", "one-time-code")
    expect(field).to_have_attribute("inputmode", "numeric")
    field.fill(code)
    page.get_by_role("button", name=TEXTS[language]["confirm"]).click()


def field_error(page: Page) -> Any:
    return page.locator("#sms_code-error")


@pytest.mark.parametrize("language", ["de", "en"])
def test_sms_double_opt_in(local_stack: LocalStack, phone_page: Any, language: str) -> None:
    texts = TEXTS[language]
    address = CUSTOMERS[language]
    first, second = NUMBERS[language]
    profile_id = api_profile(local_stack, address)["id"]
    page = phone_page(language)
    page.goto(link_from_outbox(local_stack, address))
    if page.locator("html").get_attribute("lang") != language:
        page.get_by_role("button", name=re.compile("^(English|Deutsch)$")).click()

    # SMS on: a number first, then SMS for "offers"; saving sends the code.
    save_phone(page, local_stack, first, language)
    page.goto(local_stack.http + "/communication")
    page.locator("input[name=channel-offers][value=sms]").check()
    page.get_by_role("button", name=texts["save"], exact=True).click()
    expect(page.get_by_role("status")).to_contain_text(texts["sent"])
    expect(page.locator("#sms")).to_contain_text(first)
    expect(page.get_by_text(texts["pending"])).to_be_visible()
    assert api_profile(local_stack, address)["sms_channel"] == "pending"
    shoot(page, f"code-sent.{language}.360")
    serious = [v["id"] for v in Axe().run(page).response["violations"] if v["impact"] in ("serious", "critical")]
    assert serious == [], f"the code form ({language})"
    code = newest_code(local_stack, first, language)

    # A wrong code: the message next to the field, nothing confirmed.
    enter(page, f"{(int(code) + 1) % 1_000_000:06d}", language)
    expect(field_error(page)).to_contain_text(texts["wrong"])
    expect(page.locator("#sms_code")).to_have_attribute("aria-invalid", "true")
    shoot(page, f"wrong-code.{language}.360")

    # The right code: the channel is active, and the consent is in the history.
    enter(page, code, language)
    expect(page.get_by_role("status")).to_contain_text(texts["confirmed"])
    expect(page.locator("#sms")).to_contain_text(texts["active"].format(phone=first))
    confirmed = api_profile(local_stack, address)
    assert (confirmed["sms_channel"], confirmed["verified_phone"]) == ("active", first)
    shoot(page, f"active.{language}.360")
    page.goto(local_stack.http + "/history")
    consent = (
        page.locator("tr, li, .record")
        .filter(has_text=texts["consent"])
        .filter(has_text=texts["by_sms"].format(phone=first))
    )
    expect(consent.first).to_be_visible()
    expect(consent.first).to_contain_text("sms-2026-01")
    shoot(page, f"history.{language}.360")

    # A changed number starts again: a code to the new number, SMS pending.
    save_phone(page, local_stack, second, language)
    expect(page).to_have_url(re.compile(r"/communication\?saved=1&sms=sent"))
    expect(page.locator("#sms")).to_contain_text(second)
    assert api_profile(local_stack, address)["sms_channel"] == "pending"
    assert len(sms_to(local_stack, second)) == 1
    shoot(page, f"changed-number.{language}.360")

    # The code expires while the page is open.
    expire_the_code(local_stack, profile_id)
    enter(page, newest_code(local_stack, second, language), language)
    expect(field_error(page)).to_contain_text(texts["expired"])
    shoot(page, f"expired-code.{language}.360")

    # Too many wrong entries use a (new) code up, even for the right code after them.
    page.get_by_role("button", name=texts["new_code"]).click()
    expect(page.get_by_role("status")).to_contain_text(texts["sent"])
    code = newest_code(local_stack, second, language)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _attempt in range(5):
        enter(page, wrong, language)
    expect(field_error(page)).to_contain_text(texts["used_up"])
    enter(page, code, language)
    expect(field_error(page)).to_contain_text(texts["used_up"])
    shoot(page, f"too-many-attempts.{language}.360")
    assert api_profile(local_stack, address)["verified_phone"] is None

    # A new code confirms the new number.
    page.get_by_role("button", name=texts["new_code"]).click()
    enter(page, newest_code(local_stack, second, language), language)
    expect(page.locator("#sms")).to_contain_text(texts["active"].format(phone=second))
    assert api_profile(local_stack, address)["verified_phone"] == second
