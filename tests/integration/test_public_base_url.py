"""Links in emails on a first deploy without a custom domain or PublicBaseUrl.

The functions behind the HTTP API then have an empty PUBLIC_BASE_URL (the template cannot hand them
the API's own URL without a circular dependency): their links must point at the domain the request
came in through, which API Gateway puts into ``requestContext.domainName``.
"""

from __future__ import annotations

import email
import re
from collections.abc import Iterator
from email.policy import default

import pytest

from selfservice import origin
from selfservice.settings import Settings, get_settings
from tests.conftest import Stack

EXECUTE_API = "a1b2c3d4e5.execute-api.eu-central-1.amazonaws.com"
LINK = re.compile(r"https?://[^\s\"<>]+")


@pytest.fixture
def first_deploy(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    """The stack with PUBLIC_BASE_URL as the template sets it for the API and pages functions."""
    monkeypatch.setenv("PUBLIC_BASE_URL", "")
    for function_id in ("ApiFunction", "WebFunction"):
        monkeypatch.setitem(stack.resources.functions[function_id].environment, "PUBLIC_BASE_URL", "")
    get_settings.cache_clear()
    yield stack
    get_settings.cache_clear()


def links_in_the_only_email(stack: Stack) -> list[str]:
    """The links into the pages (not the footer's imprint and privacy policy on the company's site)."""
    [sent] = stack.sent_emails()
    message = email.message_from_string(sent.raw_data, policy=default)
    found = LINK.findall(message.get_body(("plain",)).get_content())  # type: ignore[union-attr]
    company = get_settings().catalog.company
    legal = {url.get(message["Content-Language"]) for url in (company.imprint_url, company.privacy_policy_url)}
    statement = [link for link in found if link.endswith("/accessibility")]
    assert statement == [f"https://{EXECUTE_API}/accessibility"], "the footer's statement is on the same domain"
    return [link for link in found if link not in legal and link not in statement]


def test_api_links_point_at_the_domain_the_shop_called(first_deploy: Stack) -> None:
    stack = first_deploy
    created = stack.client.post("/api/profiles", json={"email": "kim@example.com"}, base_url=f"https://{EXECUTE_API}")
    assert created.status_code == 201
    stack.client.post(f"/api/profiles/{created.json['id']}/self-service-link", base_url=f"https://{EXECUTE_API}")  # type: ignore[index]
    [link] = links_in_the_only_email(stack)
    assert link.startswith(f"https://{EXECUTE_API}/link?token="), link


def test_page_links_point_at_the_domain_the_customer_is_on(first_deploy: Stack) -> None:
    stack = first_deploy
    stack.request("POST", "/api/profiles", {"email": "kim@example.com"})
    page = stack.client.get("/new-link", base_url=f"https://{EXECUTE_API}")
    assert "Secure" in page.headers["Set-Cookie"], "an https origin must get Secure cookies"
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.get_data(as_text=True))
    assert csrf
    stack.client.post(
        "/new-link", data={"csrf": csrf.group(1), "email": "kim@example.com"}, base_url=f"https://{EXECUTE_API}"
    )
    [link] = links_in_the_only_email(stack)
    assert link.startswith(f"https://{EXECUTE_API}/link?token="), link
    assert (
        stack.client.get(link.removeprefix(f"https://{EXECUTE_API}"), base_url=f"https://{EXECUTE_API}").status_code
        == 303
    )


def test_a_configured_base_url_wins_and_odd_domains_are_ignored() -> None:
    configured = Settings(public_base_url="https://preferences.example.com")
    assert origin.for_request(configured, EXECUTE_API) is configured
    empty = Settings(public_base_url="")
    assert origin.for_request(empty, EXECUTE_API).public_base_url == f"https://{EXECUTE_API}"
    for odd in ("evil.example.com/path", "a b", "", None):
        assert origin.for_request(empty, odd).public_base_url == ""
