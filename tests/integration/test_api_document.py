"""Every answer under /api/ carries the service's security headers."""

from __future__ import annotations

import pytest

from selfservice.security_headers import TRANSPORT_SECURITY
from selfservice.storage import ProfileRepository


@pytest.fixture
def broken_storage(monkeypatch):
    def explode(self, profile_id):
        raise RuntimeError("a bug")

    monkeypatch.setattr(ProfileRepository, "get", explode)


def test_every_api_answer_carries_the_security_headers_the_pages_carry(stack, broken_storage):
    answers = {
        "document": stack.request("GET", "/api/openapi.json"),
        "created": stack.request("POST", "/api/profiles", {"email": "kim@example.com"}),
        "invalid": stack.request("POST", "/api/profiles", {"email": 42}),
        "unreadable": stack.request("POST", "/api/profiles", raw=b"\xff"),
        "unsupported": stack.request("POST", "/api/profiles", raw="a", headers={"content-type": "text/plain"}),
        "too large": stack.request("POST", "/api/profiles", raw="x" * 20_000),
        "no route": stack.request("GET", "/api/nothing-here"),
        "bug": stack.request("GET", f"/api/profiles/{'a' * 32}"),
    }
    assert [answer.status for answer in answers.values()] == [200, 201, 422, 400, 415, 413, 404, 500]
    page = stack.client.get("/new-link")
    for name, answer in answers.items():
        for header, value in TRANSPORT_SECURITY.items():
            assert answer.headers.get(header) == value, f"{name}: {header}"
            assert page.headers[header] == value
    assert TRANSPORT_SECURITY["X-Content-Type-Options"] == "nosniff"
    assert TRANSPORT_SECURITY["Strict-Transport-Security"].startswith("max-age=")
