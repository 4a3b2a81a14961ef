"""Which SES feedback events suppress an address (from the JSON fixtures SES would send)."""

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from selfservice.feedback import SesFeedback

EVENTS = Path(__file__).resolve().parents[1] / "events"


def detail(name: str) -> SesFeedback:
    return SesFeedback.model_validate(json.loads((EVENTS / name).read_text())["detail"])


def test_hard_bounce_suppresses_the_recipient():
    assert detail("ses_hard_bounce.json").suppressed_addresses() == ("hard_bounce", ["clara.weber@example.com"])


def test_complaint_suppresses_the_recipient():
    assert detail("ses_complaint.json").suppressed_addresses() == ("complaint", ["david.jones@example.com"])


def test_soft_bounce_suppresses_nothing():
    assert detail("ses_soft_bounce.json").suppressed_addresses() == ("", [])


def test_malformed_event_is_refused():
    with pytest.raises(ValidationError):
        detail("ses_malformed.json")
