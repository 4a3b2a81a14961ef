"""Dates and times as a customer reads them, per language (Babel), in the company's time zone.

Used by the pages (the ``date`` and ``datetime`` filters, the history) and by the emails. Babel is
imported at the first value formatted, not with the handler.
"""

from __future__ import annotations

import datetime as dt

BERLIN = "Europe/Berlin"
"""The time zone dates and times are shown in (the company's)."""


def format_date(value: dt.date | dt.datetime | str | None, language: str) -> str:
    """A date as the language writes it in full ("1. Dezember 2026", "December 1, 2026"); a time
    is taken in the company's time zone first, an ISO string (a stored date field) is read."""
    if value in (None, ""):
        return ""
    from babel.dates import format_date as babel_format_date
    from babel.dates import get_timezone

    if isinstance(value, str):
        value = dt.date.fromisoformat(value[:10])
    if isinstance(value, dt.datetime):
        value = (value.astimezone(get_timezone(BERLIN)) if value.tzinfo else value).date()
    return babel_format_date(value, format="long", locale=language)


def format_datetime(value: dt.datetime | None, language: str) -> str:
    """Date and time in the company's time zone, to the minute ("1. Dezember 2026, 06:10")."""
    if value is None:
        return ""
    from babel.dates import format_time, get_datetime_format, get_timezone

    zone = get_timezone(BERLIN)
    local = value.astimezone(zone) if value.tzinfo else value
    time = format_time(local, format="short", locale=language)
    return str(get_datetime_format("long", locale=language)).format(time, format_date(local.date(), language))
