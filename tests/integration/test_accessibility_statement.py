"""The accessibility statement says what its results file holds, and nothing else: "not tested yet"
without one, partially conformant while a barrier is known or a check failed, every check listed;
its feedback form sends customer service a request of type accessibility, with or without signing in."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from selfservice.accessibility import RESULTS_FILE, Check, Conformance, Results, Violation, conformance, load_results
from selfservice.catalog import load_catalog
from tests.conftest import REPO
from tests.integration.test_consent import csrf_of, sign_in

CATALOG = load_catalog(REPO / "templates" / "catalog.yaml")
WCAG_VIOLATION = Violation(
    rule="color-contrast", impact="serious", help="Elements must meet contrast", tags=("wcag2aa",)
)


@pytest.fixture
def content(stack, tmp_path, monkeypatch):
    """A folder the statement reads its results from, without results unless a test writes some."""
    from selfservice.web.routes import accessibility as route

    folder = tmp_path / "content"
    folder.mkdir()
    monkeypatch.setattr(route, "load_results", lambda _content_dir: load_results(folder))
    return folder


def write_results(folder, *checks: Check) -> None:
    results = Results(
        tested_at=dt.datetime(2026, 11, 30, 21, 0, tzinfo=dt.UTC),
        commit="abc123def456",
        axe_version="4.10.2",
        checks=checks,
    )
    (folder / RESULTS_FILE).write_text(json.dumps(results.model_dump(mode="json")), encoding="utf-8")


def page(stack, language: str = "en") -> tuple[int, str]:
    answer = stack.client.get("/accessibility", headers={"Accept-Language": language})
    return answer.status_code, answer.get_data(as_text=True)


def test_without_results_the_statement_says_not_tested_yet(stack, content):
    status, html = page(stack)
    assert status == 200
    assert "These pages have not been tested yet" in html
    assert "fully conformant" not in html
    assert "table" not in html.split("What we tested", 1)[1].split("</section>", 1)[0]
    status, html = page(stack, "de")
    assert "Diese Seiten wurden noch nicht geprüft" in html
    assert (
        "Marktüberwachungsstelle der Länder für die Barrierefreiheit von Produkten und Dienstleistungen (MLBF)" in html
    )


def test_the_statement_lists_every_check_of_the_results_file(stack, content):
    write_results(
        content,
        Check(kind="axe", name="axe", page="/", language="de", viewport="360 px", passed=True),
        Check(kind="axe", name="axe", page="/", language="en", viewport="360 px", passed=True),
        Check(
            kind="axe",
            name="axe",
            page="/profile",
            language="en",
            viewport="360 px",
            passed=False,
            violations=(WCAG_VIOLATION,),
        ),
        Check(kind="keyboard", name="menu_by_keyboard", page="/history", language="de", passed=True),
    )
    status, html = page(stack)
    assert status == 200
    assert "partially conformant" in html
    rows = re.findall(r"<tr>\s*<td class=\"what\">(.*?)</tr>", html, re.DOTALL)
    assert len(rows) == 3, "one row per check and page, its languages together"
    assert "(de, en, 360 px)" in rows[0]
    assert "passed" in rows[0]
    assert "<code>/profile</code>" in rows[1]
    assert "failed" in rows[1]
    assert "Every menu item can be reached with the Tab key" in rows[2]
    assert "axe-core 4.10.2" in html
    assert "abc123def456" in html
    assert "Failed check on /profile" in html
    assert "color-contrast: Elements must meet contrast" in html
    assert "November 30, 2026" in html


def test_only_passed_checks_without_a_known_barrier_are_fully_conformant():
    passed = Results(
        tested_at=dt.datetime(2026, 11, 30, tzinfo=dt.UTC),
        checks=(Check(kind="axe", name="axe", page="/", language="de", passed=True),),
    )
    failed = Results(
        tested_at=dt.datetime(2026, 11, 30, tzinfo=dt.UTC),
        checks=(Check(kind="axe", name="axe", page="/", language="de", passed=False),),
    )
    best_practice_only = Violation(rule="region", impact="moderate", help="landmarks", tags=("best-practice",))
    assert not best_practice_only.wcag
    assert conformance(None, 0) == Conformance.UNTESTED
    assert conformance(Results(tested_at=passed.tested_at), 0) == Conformance.UNTESTED
    assert conformance(passed, 0) == Conformance.FULL
    assert conformance(passed, 1) == Conformance.PARTIAL
    assert conformance(failed, 0) == Conformance.PARTIAL


def feedback(stack, form: dict[str, str], ip_headers: dict[str, str] | None = None):
    html = stack.client.get("/accessibility").get_data(as_text=True)
    return stack.client.post("/accessibility", data={"csrf": csrf_of(html), **form}, headers=ip_headers or {})


def accessibility_requests(stack) -> list[dict]:
    return stack.request("GET", "/api/requests", query={"type": "accessibility"}).json["items"]


def test_feedback_without_signing_in_reaches_customer_service(stack):
    answer = feedback(
        stack, {"message": "The menu is hard to use with a screen reader.", "email": "Reader@Example.org"}
    )
    assert answer.status_code == 303
    assert answer.headers["Location"].startswith("/accessibility?sent=1")
    [request] = accessibility_requests(stack)
    assert request["message"] == "The menu is hard to use with a screen reader."
    assert request["status"] == "open"
    assert stack.request("GET", f"/api/profiles/{request['profileId']}").status == 404, "it names no profile"
    mailbox = str(CATALOG.request_type("accessibility").mailbox)
    [mail] = [m for m in stack.sent_emails() if mailbox in str(m.destinations)]
    assert "reply-to: reader@example.org" in str(mail.raw_data).lower()
    assert "sent without signing in" in str(mail.raw_data) or "ohne Anmeldung" in str(mail.raw_data)
    assert "reader@example.org" not in json.dumps(stack.items()), "the sender's address is not stored"
    follow = stack.client.get(answer.headers["Location"]).get_data(as_text=True)
    assert "Ihre Nachricht ist bei unserem Kundenservice eingegangen" in follow

    # no address: still sent, and the mailbox is told there is nobody to answer
    assert feedback(stack, {"message": "Too little contrast."}).status_code == 303
    assert len(accessibility_requests(stack)) == 2


def test_feedback_errors_are_shown_next_to_the_field_and_nothing_is_sent(stack):
    answer = feedback(stack, {"message": "", "email": "not an address"})
    assert answer.status_code == 422
    html = answer.get_data(as_text=True)
    assert 'id="message-error"' in html
    assert 'id="email-error"' in html
    assert 'value="not an address"' in html, "what was typed stays"
    assert accessibility_requests(stack) == []
    assert (
        feedback(
            stack,
            {"message": "x"},
        ).status_code
        == 303
    )
    refused = stack.client.post("/accessibility", data={"message": "no token"})
    assert refused.status_code == 403
    assert len(accessibility_requests(stack)) == 1


def test_feedback_from_one_client_is_limited(stack):
    for attempt in range(5):
        assert feedback(stack, {"message": f"Barrier {attempt}"}).status_code == 303
    over = feedback(stack, {"message": "Barrier 5"})
    assert over.status_code == 429
    assert "Bitte versuchen Sie es in einer Stunde noch einmal" in over.get_data(as_text=True)
    assert len(accessibility_requests(stack)) == 5


def test_signed_in_feedback_is_the_customers_own_request(stack):
    created = stack.request("POST", "/api/profiles", {"email": "kim@example.com", "locale": "en"}).json
    sign_in(stack, created["id"])
    html = stack.client.get("/accessibility").get_data(as_text=True)
    assert 'id="email"' not in html, "signed in, the address is known"
    assert feedback(stack, {"message": "The date picker needs a mouse."}).status_code == 303
    [request] = accessibility_requests(stack)
    assert request["profileId"] == created["id"]
    requests_page = stack.client.get("/requests").get_data(as_text=True)
    assert "The date picker needs a mouse." in requests_page
    assert "Report an accessibility barrier" in requests_page
