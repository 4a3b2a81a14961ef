"""How a periodic run keeps SES busy without exceeding its rate, and how one sender paces itself."""

from __future__ import annotations

import pytest

from selfservice.campaigns import (
    CAMPAIGN_SHARE_OF_SES_RATE,
    PAGE_SECONDS,
    SENDS_PER_SECOND_PER_WORKER,
    RunShape,
    SendPacer,
)


@pytest.mark.parametrize(
    ("ses_rate", "shards", "workers"),
    [(1, 16, 1), (14, 16, 1), (100, 16, 2), (500, 16, 9), (2000, 16, 16), (500, 4, 4)],
)
def test_the_number_of_senders_follows_the_ses_rate_up_to_the_shards(ses_rate: float, shards: int, workers: int):
    shape = RunShape.for_rate(ses_rate, shards, 500)
    assert shape.workers == workers
    assert shape.workers * shape.send_rate == pytest.approx(ses_rate * CAMPAIGN_SHARE_OF_SES_RATE)


def test_at_500_per_second_and_default_shards_no_sender_is_asked_for_more_than_it_sustains():
    shape = RunShape.for_rate(500, 16, 500)
    assert shape.send_rate <= SENDS_PER_SECOND_PER_WORKER
    assert shape.page_size == 500


def test_a_slow_quota_gets_pages_a_sender_can_finish_in_its_time_budget():
    shape = RunShape.for_rate(1, 16, 500)
    assert shape.page_size == int(0.9 * PAGE_SECONDS)
    assert shape.page_size / shape.send_rate <= PAGE_SECONDS
    assert RunShape.for_rate(14, 16, 500).page_size == 500, "the default quota sends a full page in time"
    assert RunShape.for_rate(14, 16, 50).page_size == 50, "never more than ReviewBatchSize"


def test_the_pacer_spaces_emails_to_its_rate_and_does_not_wait_after_a_quiet_spell():
    now = [100.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(round(seconds, 6))
        now[0] += seconds

    pacer = SendPacer(4, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        pacer.wait()
    assert waits == [0.25, 0.25, 0.25, 0.25], "the first email goes at once, then one every quarter second"
    now[0] += 10
    pacer.wait()
    assert len(waits) == 4, "after a pause the next email goes at once"
