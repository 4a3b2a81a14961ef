"""The developer console's one-line outcome of a state machine execution."""

import json

from devstack.console import outcome_of


def test_a_periodic_run_shows_its_counts_and_skip_reasons() -> None:
    summary = {"status": "finished", "due": 5, "sent": 3, "failed": 0, "skipped": {"paused": 1, "cooldown": 1}}
    assert outcome_of(json.dumps(summary)) == "due 5, sent 3, failed 0; skipped: cooldown 1, paused 1"


def test_a_run_skipped_for_another_run_says_why() -> None:
    summary = {"status": "skipped", "due": 0, "sent": 0, "error": "another periodic run is still running"}
    assert outcome_of(json.dumps(summary)) == "skipped: another periodic run is still running"


def test_an_event_review_shows_its_outcome_and_reason() -> None:
    assert outcome_of(json.dumps({"outcome": "skipped", "reason": "not_due"})) == "skipped (not_due)"
    assert outcome_of(json.dumps({"outcome": "unknown_address"})) == "unknown_address"


def test_no_or_unreadable_output_shows_nothing() -> None:
    assert outcome_of(None) == ""
    assert outcome_of("not json") == ""
