"""A bug is not bad input: the caller gets a plain 500 without details, the log gets no personal data."""

from __future__ import annotations

import pytest

from selfservice.settings import DEVELOPMENT_TOKEN_SECRET
from selfservice.storage import ProfileRepository
from selfservice.tokens import Purpose, TokenSigner

SECRET = "kim.secret@example.com"


@pytest.fixture
def broken_storage(monkeypatch):
    def explode(self, profile_id):
        raise RuntimeError(f"failed for {SECRET}")

    monkeypatch.setattr(ProfileRepository, "get", explode)


def test_api_answers_500_without_details_and_logs_no_personal_data(stack, broken_storage, log_records):
    answer = stack.request("GET", f"/api/profiles/{'a' * 32}")
    assert answer.status == 500
    assert answer.json == {"error": "internal_error", "message": "something went wrong on our side"}
    [logged] = [line for line in log_records if "unexpected error" in line]
    assert "RuntimeError" in logged
    assert SECRET not in " ".join(log_records)


def test_page_shows_an_apology_without_a_stack_trace(stack, broken_storage, log_records):
    token = TokenSigner([DEVELOPMENT_TOKEN_SECRET]).issue("a" * 32, 0, Purpose.MANAGE)
    response = stack.client.get(f"/link?token={token}")
    page = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "Traceback" not in page
    assert "kim.secret" not in page
    assert "Something went wrong" in page or "Etwas ist schiefgegangen" in page
    assert any("RuntimeError" in line for line in log_records)
    assert SECRET not in " ".join(log_records)
