"""The pages against someone who sends what no honest browser sends.

Open redirects (``/link?next=``, ``POST /language`` with ``back=``), bodies and values that used to
end in a 500, HEAD requests, and abuse of the two forms anyone can fill in with an address
(``/subscribe`` and ``/new-link``). Never a 500, never a stack trace, never a foreign ``Location``.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest

from devstack.demo import seed_demo_profiles
from selfservice.web.redirects import TARGETS
from tests.integration.test_pages import csrf_of, get, sign_in

EVIL_TARGETS = [
    "/\t/evil.example",
    "/\t\t/evil.example/x",
    "/\n/evil.example",
    "\\evil.example",
    "\\\\evil.example",
    "/\\evil.example",
    "/\\/evil.example",
    "//evil.example",
    "///evil.example",
    "//evil.example/profile",
    "/%2F/evil.example",
    "https://evil.example/",
    "http:evil.example",
    "HTTPS://evil.example",
    "javascript:alert(1)",
    "JavaScript:alert(document.cookie)",
    "data:text/html,<script>alert(1)</script>",
    "/profile\r\nSet-Cookie: ss_session=forged",
    "/\r\nLocation: https://evil.example",
    "/profile\x00//evil.example",
    " //evil.example",
    "/profile/../../evil.example",
    "/" + "a" * 5000,
]


@pytest.fixture
def demo(stack):
    return {entry["email"]: entry for entry in seed_demo_profiles()}


def link_path(entry: dict[str, str]) -> str:
    return entry["link"].replace("http://127.0.0.1:3000", "")


def assert_stays_on_the_site(response) -> str:
    assert response.status_code == 303, response.get_data(as_text=True)[:300]
    location = response.headers["Location"]
    assert location.startswith("/"), location
    assert not location.startswith("//"), location
    assert "evil" not in location, location
    assert not any(character in location for character in "\\\t\r\n\x00 "), repr(location)
    assert "X-Injected" not in response.headers
    assert location.partition("?")[0] in TARGETS
    return location


# --- open redirects --------------------------------------------------------------------------------


@pytest.mark.parametrize("target", EVIL_TARGETS)
def test_a_link_never_sends_the_browser_elsewhere(stack, demo, target):
    response = stack.client.get(f"{link_path(demo['anna.schmidt@example.com'])}&next={quote(target, safe='')}")
    assert assert_stays_on_the_site(response) == "/"
    assert response.headers["Set-Cookie"].startswith("ss_session="), "the link itself still works"


@pytest.mark.parametrize("target", EVIL_TARGETS)
def test_the_language_switch_never_sends_the_browser_elsewhere(stack, target):
    html = stack.client.get("/new-link").get_data(as_text=True)
    response = stack.client.post("/language", data={"csrf": csrf_of(html), "lang": "en", "back": target})
    assert assert_stays_on_the_site(response) == "/"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/profile?focus=city,street", "/profile?focus=city,street"),
        ("/profile?focus=city&next=//evil.example", "/profile?focus=city"),
        ("/profile?focus=<script>", "/profile"),
        ("/profile?focus=city\r\nX-Injected: 1", "/profile"),
        ("/unsubscribe?token=abc%0d%0aX-Injected:%201", "/unsubscribe"),
        ("/review", "/review"),
        ("/unsubscribe?token=eyJwIjoiYSJ9.Zx-_1", "/unsubscribe?token=eyJwIjoiYSJ9.Zx-_1"),
        ("/language", "/"),
        ("/sign-out", "/"),
        ("/privacy/export", "/"),
        ("/link?token=x", "/"),
    ],
)
def test_own_pages_are_kept_with_only_their_own_safe_query(stack, demo, target, expected):
    response = stack.client.get(f"{link_path(demo['anna.schmidt@example.com'])}&next={quote(target, safe='')}")
    assert assert_stays_on_the_site(response) == expected


def test_every_allowed_target_is_a_page_that_answers_a_get(stack, demo):
    sign_in(stack, demo["anna.schmidt@example.com"]["link"])
    for path in TARGETS:
        status, _html, _ = get(stack, path)
        assert status in (200, 400), f"{path} answers {status}: the allow-list names a page that does not exist"
