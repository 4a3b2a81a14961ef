"""Changing a profile: validated against the catalog, only real changes recorded, nothing half-applied."""

import datetime as dt

import pytest

from selfservice.domain.changes import ProfilePatch, apply_patch, describe
from selfservice.domain.errors import InvalidInput


def test_changed_field_gets_new_confirmation_time_and_untouched_fields_keep_theirs(profile, catalog, now):
    updated, changes = apply_patch(profile, ProfilePatch(fields={"city": "Köln", "first_name": "Anna"}), catalog, now)
    assert updated.value_of("city") == "Köln"
    assert updated.fields["city"].confirmed_at == now
    assert updated.fields["first_name"].confirmed_at == profile.fields["first_name"].confirmed_at
    assert [c.field for c in changes] == ["fields.city"]
    assert describe(changes) == {"fields.city": {"before": "Berlin", "after": "Köln"}}
    assert updated.version == profile.version + 1


def test_no_change_keeps_version(profile, catalog, now):
    updated, changes = apply_patch(profile, ProfilePatch(fields={"city": "Berlin"}), catalog, now)
    assert changes == []
    assert updated.version == profile.version


def test_original_is_not_modified_when_patch_is_refused(profile, catalog, now):
    patch = ProfilePatch(fields={"city": "Hamburg"}, preferences={"topics": {"nonsense": True}})
    with pytest.raises(InvalidInput) as error:
        apply_patch(profile, patch, catalog, now)
    assert error.value.field == "preferences.topics.nonsense"
    assert profile.value_of("city") == "Berlin"


def test_hidden_topic_is_never_touched_by_a_save(profile, catalog, now):
    updated, _ = apply_patch(profile, ProfilePatch(preferences={"topics": {"offers": False}}), catalog, now)
    assert updated.preferences.topics["partner_offers"] is True
    with pytest.raises(InvalidInput, match="not offered"):
        apply_patch(profile, ProfilePatch(preferences={"topics": {"partner_offers": False}}), catalog, now)


@pytest.mark.parametrize(
    ("fields", "path", "reason"),
    [
        ({"shoe_size": "42"}, "fields.shoe_size", "unknown field"),
        ({"birthday": "23.04.1990"}, "fields.birthday", "date like"),
        ({"birthday": "2999-01-01"}, "fields.birthday", "between 1900 and today"),
        ({"phone": "0151 123"}, "fields.phone", "international form"),
        ({"postal_code": "!!"}, "fields.postal_code", "invalid format"),
        ({"salutation": "king"}, "fields.salutation", "unknown choice"),
        ({"interests": ["cooking", "skydiving"]}, "fields.interests", "unknown choice"),
        ({"first_name": "x" * 81}, "fields.first_name", "at most 80"),
    ],
)
def test_invalid_field_values_name_field_and_reason(profile, catalog, now, fields, path, reason):
    with pytest.raises(InvalidInput) as error:
        apply_patch(profile, ProfilePatch(fields=fields), catalog, now)
    assert error.value.field == path
    assert reason in error.value.message


def test_values_are_normalised(profile, catalog, now):
    patch = ProfilePatch(
        fields={"phone": "0049 (151) 234-5678", "birthday": "1990-04-23", "interests": ["tech", "garden", "tech"]}
    )
    updated, _ = apply_patch(profile, patch, catalog, now)
    assert updated.phone == "+491512345678"
    assert updated.value_of("interests") == ["garden", "tech"]


def test_clearing_a_field_removes_it_and_records_the_old_value(profile, catalog, now):
    updated, changes = apply_patch(profile, ProfilePatch(fields={"city": None}), catalog, now)
    assert updated.value_of("city") is None
    assert changes[0].before == "Berlin"
    assert changes[0].after is None


def test_sms_needs_a_phone_number(profile, catalog, now):
    with pytest.raises(InvalidInput) as error:
        apply_patch(profile, ProfilePatch(preferences={"channels": {"offers": ["sms"]}}), catalog, now)
    assert error.value.field == "preferences.channels.offers"
    with_phone = ProfilePatch(
        fields={"phone": "+49 151 2345678"}, preferences={"channels": {"offers": ["sms", "email"]}}
    )
    updated, _ = apply_patch(profile, with_phone, catalog, now)
    assert updated.preferences.channels_for("offers") == ["email", "sms"]


def test_channel_must_be_offered_for_the_topic(profile, catalog, now):
    patch = ProfilePatch(fields={"phone": "+491512345678"}, preferences={"channels": {"news": ["sms"]}})
    with pytest.raises(InvalidInput, match="not offered"):
        apply_patch(profile, patch, catalog, now)


def test_frequency_and_pause(profile, catalog, now):
    until = now + dt.timedelta(weeks=4)
    updated, changes = apply_patch(
        profile, ProfilePatch(preferences={"frequency": "monthly", "paused_until": until}), catalog, now
    )
    assert updated.preferences.frequency == "monthly"
    assert updated.preferences.is_paused(now)
    assert not updated.preferences.is_paused(until + dt.timedelta(seconds=1))
    assert {c.field for c in changes} == {"preferences.frequency", "preferences.paused_until"}
    resumed, _ = apply_patch(updated, ProfilePatch(preferences={"resume": True}), catalog, now)
    assert resumed.preferences.paused_until is None
    with pytest.raises(InvalidInput, match="unknown frequency"):
        apply_patch(profile, ProfilePatch(preferences={"frequency": "hourly"}), catalog, now)
    with pytest.raises(InvalidInput, match="in the future"):
        apply_patch(profile, ProfilePatch(preferences={"paused_until": now - dt.timedelta(days=1)}), catalog, now)


def test_book_change_and_cancel_a_service(profile, catalog, now):
    booked, _ = apply_patch(profile, ProfilePatch(services={"delivery_plus": "monthly"}), catalog, now)
    later = now + dt.timedelta(days=3)
    changed, changes = apply_patch(booked, ProfilePatch(services={"delivery_plus": "yearly"}), catalog, later)
    assert changed.services["delivery_plus"].booked_at == now
    assert changed.services["delivery_plus"].changed_at == later
    assert changes[0].before == "monthly"
    assert changes[0].after == "yearly"
    cancelled, _ = apply_patch(changed, ProfilePatch(services={"delivery_plus": None}), catalog, later)
    assert "delivery_plus" not in cancelled.services
    with pytest.raises(InvalidInput, match="unknown option"):
        apply_patch(profile, ProfilePatch(services={"delivery_plus": "weekly"}), catalog, now)
    with pytest.raises(InvalidInput, match="needs your"):
        apply_patch(profile, ProfilePatch(services={"birthday_club": "member"}), catalog, now)


def test_email_change_is_validated(profile, catalog, now):
    updated, changes = apply_patch(profile, ProfilePatch(email="Anna.Neu@Example.COM"), catalog, now)
    assert updated.email_key == "anna.neu@example.com"
    assert changes[0].field == "email"
    with pytest.raises(InvalidInput) as error:
        apply_patch(profile, ProfilePatch(email="anna@@example"), catalog, now)
    assert error.value.field == "email"
