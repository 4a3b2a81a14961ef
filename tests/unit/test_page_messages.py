"""Error messages on the pages: a full sentence per problem that names the field, in both languages."""

import datetime as dt
import re
from pathlib import Path

import pytest

from selfservice.domain.changes import checked_field_value
from selfservice.domain.errors import InvalidInput
from selfservice.domain.models import Profile
from selfservice.web import forms, messages
from selfservice.web.render import load_translations

REPO = Path(__file__).resolve().parents[2]
TODAY = dt.date(2026, 11, 23)
REASON = re.compile(r'InvalidInput\(\s*[^,()]+,\s*"([^"]+)"')


def german():
    return load_translations(REPO / "templates", "de").gettext


def english(text: str) -> str:
    return text


def full_sentence(text: str) -> bool:
    return bool(re.fullmatch(r"[„“A-ZÄÖÜ].*[.?!]", text)) and "{" not in text


def raised_reasons() -> set[str]:
    found = set()
    for folder in ("domain", "usecases"):
        for source in (REPO / "layers" / "shared" / "selfservice" / folder).glob("*.py"):
            found |= set(REASON.findall(source.read_text(encoding="utf-8")))
    return found


def test_every_reason_the_domain_raises_has_a_sentence_of_its_own():
    reasons = raised_reasons()
    assert len(reasons) > 15
    assert sorted(reasons - set(messages.SENTENCES)) == []


@pytest.mark.parametrize("translate", [english, german()], ids=["en", "de"])
def test_every_sentence_is_a_full_sentence_in_both_languages(translate):
    for template in {*messages.SENTENCES.values(), messages.REQUIRED, messages.CHECK_ENTRY}:
        text = translate(template).format(field="Ort", max=80, needed="Geburtsdatum", channel="sms")
        assert full_sentence(text), text
        if "{field}" in template:
            assert "Ort" in text, f"{template!r} must name the field"


@pytest.mark.parametrize(
    ("field_id", "raw", "english_text", "german_text"),
    [
        (
            "postal_code",
            "!!",
            "“Postal code” is not in the expected format. Please check your entry.",
            "Bitte prüfen Sie Ihre Eingabe im Feld „Postleitzahl“: Das Format stimmt nicht.",
        ),
        (
            "first_name",
            "x" * 81,
            "“First name” can be at most 80 characters long.",
            "Im Feld „Vorname“ sind höchstens 80 Zeichen möglich.",
        ),
        (
            "birthday",
            "2999-01-01",
            "“Date of birth” must be a date between 1900 and today.",
            "Bitte geben Sie im Feld „Geburtsdatum“ ein Datum zwischen 1900 und heute ein.",
        ),
        (
            "phone",
            "0151",
            "Please enter “Mobile number” in international form, like +49 151 23456789.",
            "Bitte geben Sie die Nummer im Feld „Mobilnummer“ international an, zum Beispiel +49 151 23456789.",
        ),
        (
            "salutation",
            "dr",
            "Please choose one of the options for “Salutation”.",
            "Bitte wählen Sie im Feld „Anrede“ einen Eintrag aus der Liste.",
        ),
    ],
)
def test_a_wrong_value_gets_a_sentence_naming_its_field(catalog, field_id, raw, english_text, german_text):
    with pytest.raises(InvalidInput) as raised:
        checked_field_value(catalog.field(field_id), raw, TODAY)
    assert forms.message_of(raised.value, english, catalog, "en") == english_text
    assert forms.message_of(raised.value, german(), catalog, "de") == german_text
    assert raised.value.message != english_text, "the JSON API keeps its short reason"


def test_the_personal_data_form_names_every_field_it_refuses(catalog):
    form = {"first_name": [""], "last_name": ["Schmidt"], "city": [""], "postal_code": ["!!"]}
    with pytest.raises(forms.FormErrors) as raised:
        forms.personal_data_patch(form, catalog, TODAY, german(), "de")
    # Empty required fields are asked for on the page, never a reason to refuse the rest.
    assert raised.value.errors == {
        "postal_code": "Bitte prüfen Sie Ihre Eingabe im Feld „Postleitzahl“: Das Format stimmt nicht.",
    }


def test_communication_and_services_errors_name_the_topic_or_service(catalog, now):
    profile = Profile(email="anna@example.com")
    form = {"topic": ["offers"], "channel-offers": ["sms"], "frequency": ["hourly"], "pause_weeks": ["3"]}
    with pytest.raises(forms.FormErrors) as raised:
        forms.communication_patch(form, profile, catalog, now, english, "en")
    assert raised.value.errors == {
        "channel-offers": "SMS for “Offers” needs your mobile number. Please add it under Personal data first.",
        "frequency": "Please choose how often you would like to hear from us.",
        "pause_weeks": "Please choose the length of the pause from the list.",
    }
    with pytest.raises(forms.FormErrors) as raised:
        forms.services_patch({"delivery_plus": ["weekly"]}, catalog, german(), "de")
    assert raised.value.errors == {
        "delivery_plus": "Bitte wählen Sie für „Lieferservice Plus“ eine Option aus der Liste."
    }


def test_a_service_that_needs_a_field_names_both(catalog):
    error = InvalidInput("services.birthday_club", "this service needs your {needed}", needed="birthday")
    assert forms.message_of(error, english, catalog, "en") == (
        "“Birthday club” needs your “Date of birth”. Please add it under Personal data first."
    )
    assert forms.message_of(error, german(), catalog, "de") == (
        "Für „Geburtstagsclub“ brauchen wir Ihre Angabe im Feld „Geburtsdatum“. "
        "Bitte ergänzen Sie sie zuerst unter „Persönliche Daten“."
    )


def test_without_a_field_to_name_the_message_is_still_a_sentence():
    assert forms.message_of(InvalidInput("fields.shoe_size", "unknown field"), english) == "Please check this entry."
    error = InvalidInput("email", "this is not a valid email address")
    assert forms.message_of(error, english) == "Please enter a valid email address, like name@example.com."


@pytest.mark.parametrize(
    ("path", "key"),
    [
        ("fields.city", "city"),
        ("services.delivery_plus", "delivery_plus"),
        ("preferences.channels.offers", "channel-offers"),
        ("preferences.paused_until", "pause_weeks"),
        ("preferences.frequency", "frequency"),
        ("email", "email"),
    ],
)
def test_a_domain_error_is_shown_at_the_control_it_is_about(path, key):
    assert messages.error_key(path) == key
