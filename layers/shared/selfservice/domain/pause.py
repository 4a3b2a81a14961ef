"""A pause that ends on its own, told: when the customer is due the note that emails resume."""

from __future__ import annotations

import datetime as dt

from selfservice.domain.consent import receiving_topics
from selfservice.domain.models import Profile


def pause_note_due(profile: Profile, days_before: int) -> dt.datetime | None:
    """When the note "your pause ends on …" is due for the profile's pause, or None when there is none
    to send: no pause, the note for this pause's end was sent already (an extended pause has a new end
    and gets its own note), or nothing would resume (no subscription, suppressed, no topic received).

    Depends on the profile alone, not on the time, so the sparse index of due notes (storage) is
    right after every write; whether the pause is still running is checked when the note is sent.
    """
    paused_until = profile.preferences.paused_until
    if paused_until is None or profile.pause_note_sent_for == paused_until:
        return None
    if profile.suppressed or not receiving_topics(profile):
        return None
    return paused_until - dt.timedelta(days=days_before)
