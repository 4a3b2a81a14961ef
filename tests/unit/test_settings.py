"""Settings come from the environment (variable names in any case), constructor values win."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from selfservice.settings import Settings


def test_fields_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TABLE_NAME", "profiles-prod")
    monkeypatch.setenv("review_shard_count", "8")
    monkeypatch.setenv("SES_MAX_SEND_RATE", "50")
    monkeypatch.setenv("REVIEW_EVENT_DELAY_HOURS", "0")
    monkeypatch.setenv("CONTENT_DIR", "/opt")
    monkeypatch.setenv("SOMETHING_ELSE", "ignored")
    settings = Settings()
    assert settings.table_name == "profiles-prod"
    assert settings.review_shard_count == 8
    assert settings.ses_max_send_rate == 50.0
    assert settings.review_event_delay_hours == 0
    assert settings.content_dir == Path("/opt")
    assert settings.stage == "local", "a field without a variable keeps its default"


def test_constructor_values_win_and_settings_stay_frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://from-env.example.com")
    settings = Settings(public_base_url="")
    assert settings.public_base_url == ""
    with pytest.raises(ValidationError):
        settings.stage = "prod"  # type: ignore[misc]
    assert hash(settings) == hash(Settings(public_base_url=""))


def test_an_invalid_variable_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REVIEW_SHARD_COUNT", "0")
    with pytest.raises(ValidationError, match="review_shard_count"):
        Settings()
