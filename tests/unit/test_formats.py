"""Dates and times as the customer reads them: per language, in the company's time zone, never ISO."""

import datetime as dt

import pytest

from selfservice.formats import format_date, format_datetime
from selfservice.web.views import display_value


@pytest.mark.parametrize(
    ("language", "expected"),
    [("de", "14. Juni 1988"), ("en", "June 14, 1988")],
)
def test_a_stored_date_is_written_as_the_language_writes_it(language, expected):
    assert format_date("1988-06-14", language) == expected
    assert format_date(dt.date(1988, 6, 14), language) == expected


@pytest.mark.parametrize(
    ("language", "expected"),
    [("de", "1. Januar 2027, 00:30"), ("en", "January 1, 2027, 12:30\u202fAM")],
)
def test_a_time_is_shown_in_berlin_to_the_minute(language, expected):
    new_year_in_berlin = dt.datetime(2026, 12, 31, 23, 30, 59, tzinfo=dt.UTC)
    assert format_datetime(new_year_in_berlin, language) == expected
    assert format_date(new_year_in_berlin, language).endswith("2027"), "the date is Berlin's date"


def test_summer_time_is_respected():
    assert format_datetime(dt.datetime(2026, 7, 1, 10, 0, tzinfo=dt.UTC), "de") == "1. Juli 2026, 12:00"


def test_nothing_gives_nothing():
    assert format_date(None, "de") == ""
    assert format_date("", "en") == ""
    assert format_datetime(None, "de") == ""


def test_date_fields_are_displayed_in_the_language_not_as_iso(catalog):
    birthday = catalog.field("birthday")
    assert display_value(birthday, "1988-06-14", "de") == "14. Juni 1988"
    assert display_value(birthday, "1988-06-14", "en") == "June 14, 1988"
    assert display_value(birthday, "not a date", "en") == "not a date", "an odd stored value is shown as it is"
    assert display_value(catalog.field("salutation"), "ms", "de") == "Frau"
