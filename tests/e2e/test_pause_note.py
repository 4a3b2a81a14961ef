"""The pause-ending note in a real browser: the note the daily run sends, read from the local stack's
outbox, and its "extend the pause" link clicked through to the communication page, in German and English."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, expect

from tests.e2e.conftest import LocalStack

pytestmark = pytest.mark.e2e

TEXTS = {
    "de": {"paused": "Pausiert bis", "extend": "Pause verlängern um", "save": "Speichern", "weeks": "2 Wochen"},
    "en": {"paused": "Paused until", "extend": "Extend the pause by", "save": "Save", "weeks": "2 weeks"},
}


def paused_subscriber(stack: LocalStack, address: str, language: str, days_left: int) -> dict[str, Any]:
    row = {
        "email": address,
        "locale": language,
        "topics": ["news"],
        "consent": {"givenAt": "2025-03-02T10:15:00+01:00", "source": "shop checkout", "version": "2026-01"},
    }
    imported = requests.post(f"{stack.http}/api/imports", json={"profiles": [row]}, timeout=30)
    assert imported.json()["created"] == 1, imported.text
    profile = requests.get(f"{stack.http}/api/profiles", params={"email": address}, timeout=10).json()
    until = (dt.datetime.now(dt.UTC) + dt.timedelta(days=days_left)).replace(microsecond=0)
    paused = requests.patch(
        f"{stack.http}/api/profiles/{profile['id']}",
        json={"preferences": {"paused_until": until.isoformat()}},
        timeout=10,
    )
    assert paused.status_code == 200, paused.text
    return paused.json()


def run_pause_notes(stack: LocalStack) -> dict[str, int]:
    """What the daily schedule does: invoke the function (the local stack runs its handler)."""
    answer = stack.client("lambda").invoke(FunctionName="selfservice-pause-notes-dev", Payload=b"{}")
    assert "FunctionError" not in answer
    return dict(json.loads(answer["Payload"].read()))


def note_to(stack: LocalStack, address: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        outbox = requests.get(f"{stack.http}/_dev/api/outbox", timeout=10).json()
        found = [m for m in outbox if address in m["to"] and "pause_ending" in m["headers"].get("Feedback-ID", "")]
        if found:
            return found[-1]
        time.sleep(0.2)
    raise AssertionError(f"no pause note to {address} in the outbox")


@pytest.mark.parametrize("language", ["de", "en"])
def test_the_extend_link_of_the_pause_note_extends_the_pause(local_stack: LocalStack, browser: Browser, language):
    address = f"pausing-{language}@example.com"
    profile = paused_subscriber(local_stack, address, language, days_left=2)
    end = dt.datetime.fromisoformat(profile["preferences"]["paused_until"])
    assert run_pause_notes(local_stack).get("sent", 0) >= 1
    note = note_to(local_stack, address)
    assert "List-Unsubscribe" not in note["headers"], "a service note, not a newsletter"
    extend = next(link for link in re.findall(r"https?://\S+", note["text"]) if link.endswith("#pause"))
    texts = TEXTS[language]

    page = browser.new_page(locale=language)
    try:
        page.goto(extend)
        assert page.url.endswith("/communication#pause"), page.url
        pause = page.locator("#pause")
        expect(pause).to_contain_text(texts["paused"])
        page.get_by_label(texts["extend"]).select_option(label=texts["weeks"])
        page.get_by_role("button", name=texts["save"]).first.click()
        page.wait_for_load_state()
        expect(page.locator("#pause")).to_contain_text(texts["paused"])
    finally:
        page.close()
    stored = requests.get(f"{local_stack.http}/api/profiles/{profile['id']}", timeout=10).json()
    assert dt.datetime.fromisoformat(stored["preferences"]["paused_until"]) == end + dt.timedelta(weeks=2)
    # Told once for this end; the extended pause gets its own note three days before its new end.
    assert run_pause_notes(local_stack).get("sent", 0) == 0
