"""Leaving, as a mail client and as a person: RFC 8058 one-click over HTTP, opt-down in the browser.

The unsubscribe URL is taken from the List-Unsubscribe header of a real marketing email: the
periodic review campaign is run on the local stack and its emails are read from the outbox.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, expect

from tests.e2e.conftest import LocalStack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def marketing_mails(local_stack: LocalStack) -> list[dict[str, Any]]:
    """Run the periodic review once and return the review emails it sent."""
    started = requests.post(f"{local_stack.http}/_dev/api/periodic", timeout=30)
    assert started.status_code in (200, 202), started.text
    [run] = started.json()["executionArns"]
    sfn = local_stack.client("stepfunctions")
    deadline = time.monotonic() + 180
    described = sfn.describe_execution(executionArn=run)
    while described["status"] == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.5)
        described = sfn.describe_execution(executionArn=run)
    assert described["status"] == "SUCCEEDED", described
    outbox = requests.get(f"{local_stack.http}/_dev/api/outbox", timeout=10).json()
    mails = [m for m in outbox if "List-Unsubscribe" in m["headers"]]
    recipients = {address for mail in mails for address in mail["to"]}
    assert {"clara.weber@example.com", "eva.fischer@example.com"} <= recipients, (
        f"the periodic review did not mail the due demo customers; its summary: {described.get('output')}"
    )
    return mails


def unsubscribe_url(mails: list[dict[str, Any]], address: str) -> str:
    mail = next(m for m in mails if address in m["to"])
    assert mail["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    return re.fullmatch(r"<(https?://[^>]+)>", mail["headers"]["List-Unsubscribe"]).group(1)


def profile(stack: LocalStack, address: str) -> dict[str, Any]:
    return requests.get(f"{stack.http}/api/profiles", params={"email": address}, timeout=10).json()


def test_one_click_unsubscribe_over_http(local_stack: LocalStack, marketing_mails):
    address = "clara.weber@example.com"
    url = unsubscribe_url(marketing_mails, address)
    assert "/unsubscribe/one-click?token=" in url

    shown = requests.get(url, timeout=10)
    assert shown.status_code == 200
    assert profile(local_stack, address)["status"] == "subscribed", "a GET (mail scanner) unsubscribes no one"

    first = requests.post(
        url,
        data="List-Unsubscribe=One-Click",
        timeout=10,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert first.status_code == 200
    stored = profile(local_stack, address)
    assert stored["status"] == "unsubscribed"
    again = requests.post(
        url,
        data="List-Unsubscribe=One-Click",
        timeout=10,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert again.status_code == 200
    without_csrf = re.compile(r'name="csrf" value="[^"]*"')
    assert without_csrf.sub("", again.text) == without_csrf.sub("", first.text), "the same answer, no error"
    history = requests.get(f"{local_stack.http}/api/profiles/{stored['id']}/history", timeout=10).json()["entries"]
    withdrawals = [e for e in history if e["kind"] == "consent_withdrawn"]
    assert len(withdrawals) == 1
    assert withdrawals[0]["source"] == "one-click"


def test_opt_down_to_monthly_in_the_browser(local_stack: LocalStack, marketing_mails, browser: Browser):
    address = "eva.fischer@example.com"
    url = unsubscribe_url(marketing_mails, address)
    context = browser.new_context(viewport={"width": 360, "height": 780})
    page = context.new_page()
    page.goto(url)
    expect(page.locator("h1")).to_have_text("Weniger statt gar nichts?")
    page.get_by_role("radio", name="Einmal im Monat").check()
    page.get_by_role("button", name="Auswahl speichern").click()
    expect(page.locator("h1")).to_have_text("Schön, dass Sie bleiben")
    context.close()
    stored = profile(local_stack, address)
    assert stored["status"] == "subscribed"
    assert stored["preferences"]["frequency"] == "monthly"
    deadline = time.monotonic() + 5
    while '"UnsubscribeSaved"' not in local_stack.output() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert '"UnsubscribeSaved"' in local_stack.output(), "the saved unsubscribe is counted as a metric"
