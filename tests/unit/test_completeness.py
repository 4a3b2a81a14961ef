"""Profile completeness: the percentage and the list of what is missing come from one rule."""

import datetime as dt
import itertools

import pytest

from selfservice.domain.models import FieldValue, Profile
from selfservice.domain.review import Completeness, completeness
from selfservice.web.views import overview

AT = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
SAMPLE = {
    "salutation": "ms",
    "first_name": "Anna",
    "last_name": "Schmidt",
    "birthday": "1988-06-14",
    "street": "Lindenstraße 5",
    "postal_code": "10969",
    "city": "Berlin",
    "phone": "+491701234567",
    "interests": ["cooking"],
}


def profile_with(*field_ids: str) -> Profile:
    return Profile(
        email="anna@example.com", fields={f: FieldValue(value=SAMPLE[f], confirmed_at=AT) for f in field_ids}
    )


def test_percentage_and_missing_list_agree_for_every_combination_of_filled_fields(catalog):
    ids = [spec.id for spec in catalog.fields]
    assert set(ids) == set(SAMPLE), "the sample fills every catalog field"
    for size in range(len(ids) + 1):
        for filled in itertools.combinations(ids, size):
            result = completeness(profile_with(*filled), catalog)
            assert set(result.missing) == set(ids) - set(filled)
            assert (result.percent == 100) == (not result.missing), filled
            assert (result.percent == 0) == (not filled), filled
            assert result.percent == int(result.share * 100) or not result.missing


def test_the_overview_lists_exactly_what_the_percentage_lacks(catalog, now):
    """The two reports of the issue: 11 % with two fields listed, 78 % with none listed."""
    only_first_name = overview(profile_with("first_name"), catalog, "en", now, str)
    assert only_first_name["percent"] == 11
    assert len(only_first_name["missing"]) == len(catalog.fields) - 1
    assert "City" in only_first_name["missing"]

    like_anna = overview(
        profile_with("salutation", "first_name", "last_name", "street", "postal_code", "city", "interests"),
        catalog,
        "de",
        now,
        str,
    )
    assert like_anna["percent"] == 77, "7 of 9, rounded down"
    assert like_anna["missing"] == ["Geburtsdatum", "Mobilnummer"]
    assert like_anna["focus"].startswith("birthday,phone"), "the link puts what is missing first"

    everything = overview(profile_with(*SAMPLE), catalog, "en", now, str)
    assert (everything["percent"], everything["missing"]) == (100, [])


def test_a_cleared_value_counts_as_missing(catalog):
    profile = profile_with("first_name", "interests")
    profile.fields["interests"] = FieldValue(value=[], confirmed_at=AT)
    assert "interests" in completeness(profile, catalog).missing


@pytest.mark.parametrize(
    ("counted", "missing", "percent"),
    [
        (300, 1, 99),  # 99.67 % is not "complete"
        (300, 299, 1),  # one field of 300 filled is not 0 %
        (3, 1, 66),
        (9, 0, 100),
        (9, 9, 0),
    ],
)
def test_whole_percent_is_rounded_down_and_never_claims_complete_or_empty_wrongly(counted, missing, percent):
    fields = tuple(f"f{i}" for i in range(counted))
    assert Completeness(counted=fields, missing=fields[:missing]).percent == percent
