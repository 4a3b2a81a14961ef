"""Demo profiles for the local stack: German and English, confirmed subscribers, and some with
gaps or stale fields so that a review campaign has work to do."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from selfservice.bootstrap import wiring
from selfservice.domain.models import (
    FieldValue,
    LedgerEntry,
    LedgerKind,
    Preferences,
    Profile,
    ServiceBooking,
    Source,
    SubscriptionStatus,
)
from selfservice.settings import Settings, get_settings
from selfservice.tokens import Purpose


@dataclass(frozen=True)
class DemoProfile:
    email: str
    locale: str
    note: str
    values: dict[str, str | list[str]]
    confirmed_days_ago: int = 20
    stale: tuple[str, ...] = ()
    topics: tuple[str, ...] = ("offers", "news")
    frequency: str = "as_published"
    channels: dict[str, list[str]] = field(default_factory=dict)
    status: SubscriptionStatus = SubscriptionStatus.SUBSCRIBED
    paused_weeks: int = 0
    services: dict[str, str] = field(default_factory=dict)
    reviewed_days_ago: int = 30


DEMO_PROFILES = (
    DemoProfile(
        "anna.schmidt@example.com",
        "de",
        "complete and fresh",
        {
            "salutation": "ms",
            "first_name": "Anna",
            "last_name": "Schmidt",
            "street": "Lindenstraße 5",
            "postal_code": "10969",
            "city": "Berlin",
            "interests": ["cooking", "garden"],
        },
        frequency="weekly",
    ),
    DemoProfile(
        "ben.miller@example.com",
        "en",
        "missing last name and city (review due)",
        {"first_name": "Ben"},
        topics=("offers", "events"),
    ),
    DemoProfile(
        "clara.weber@example.com",
        "de",
        "address confirmed 400 days ago (review due)",
        {
            "salutation": "ms",
            "first_name": "Clara",
            "last_name": "Weber",
            "street": "Marktplatz 2",
            "postal_code": "50667",
            "city": "Köln",
        },
        stale=("street", "postal_code", "city"),
        topics=("news",),
        frequency="monthly",
    ),
    DemoProfile(
        "david.jones@example.com",
        "en",
        "paused for 4 weeks",
        {"first_name": "David", "last_name": "Jones", "city": "Munich"},
        paused_weeks=4,
    ),
    DemoProfile(
        "eva.fischer@example.com",
        "de",
        "SMS for offers, Delivery Plus booked, last review 200 days ago (due)",
        {
            "first_name": "Eva",
            "last_name": "Fischer",
            "city": "Hamburg",
            "phone": "+491701234567",
            "birthday": "1988-06-14",
        },
        channels={"offers": ["email", "sms"]},
        services={"delivery_plus": "monthly", "birthday_club": "member"},
        reviewed_days_ago=200,
    ),
    DemoProfile(
        "frank.neumann@example.com",
        "de",
        "subscription not yet confirmed (double opt-in pending)",
        {"first_name": "Frank"},
        status=SubscriptionStatus.PENDING,
    ),
)


def _profile(demo: DemoProfile, now: dt.datetime, consent_version: str) -> Profile:
    confirmed = now - dt.timedelta(days=demo.confirmed_days_ago)
    old = now - dt.timedelta(days=400)
    return Profile(
        email=demo.email,
        locale=demo.locale,
        status=demo.status,
        consent_version=consent_version if demo.status == SubscriptionStatus.SUBSCRIBED else None,
        fields={
            field_id: FieldValue(value=value, confirmed_at=old if field_id in demo.stale else confirmed)
            for field_id, value in demo.values.items()
        },
        preferences=Preferences(
            topics=dict.fromkeys(demo.topics, True),
            frequency=demo.frequency,
            channels=dict(demo.channels),
            paused_until=now + dt.timedelta(weeks=demo.paused_weeks) if demo.paused_weeks else None,
        ),
        services={
            service_id: ServiceBooking(service_id=service_id, option=option, booked_at=confirmed, changed_at=confirmed)
            for service_id, option in demo.services.items()
        },
        created_at=now - dt.timedelta(days=max(demo.reviewed_days_ago, 450)),
        updated_at=confirmed,
        last_reviewed_at=now - dt.timedelta(days=demo.reviewed_days_ago),
    )


def seed_demo_profiles(settings: Settings | None = None) -> list[dict[str, Any]]:
    """Create the demo profiles (once) and return them with a fresh link to their pages."""
    service = wiring(settings or get_settings())
    now = dt.datetime.now(dt.UTC)
    consent = service.catalog.current_consent(now.date())
    seeded = []
    for demo in DEMO_PROFILES:
        profile = service.repository.find_by_email(demo.email)
        if profile is None:
            profile = _profile(demo, now, consent.version)
            entries = [
                LedgerEntry(
                    profile_id=profile.id, at=profile.created_at, kind=LedgerKind.PROFILE_CREATED, source=Source.SYSTEM
                )
            ]
            if demo.status == SubscriptionStatus.SUBSCRIBED:
                entries.append(
                    LedgerEntry(
                        profile_id=profile.id,
                        at=profile.created_at,
                        kind=LedgerKind.CONSENT_GIVEN,
                        source=Source.CONFIRMATION_LINK,
                        consent_version=consent.version,
                        topics=list(demo.topics),
                    )
                )
            service.repository.create(profile, entries)
        seeded.append(
            {
                "email": demo.email,
                "locale": demo.locale,
                "note": demo.note,
                "profile_id": profile.id,
                "link": service.link(profile, Purpose.MANAGE, "/link"),
            }
        )
    return seeded
