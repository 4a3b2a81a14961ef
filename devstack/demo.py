"""Demo profiles for the local stack: German and English, confirmed subscribers, and some with
gaps or stale fields so that a review campaign has work to do."""

import datetime as dt
import functools
from dataclasses import dataclass, field
from typing import Any

from selfservice.bootstrap import wiring
from selfservice.domain import models
from selfservice.domain.models import SubscriptionStatus
from selfservice.settings import Settings, get_settings
from selfservice.tokens import Purpose


@dataclass(frozen=True)
class DemoProfile:
    email: str
    locale: str
    note: str
    values: dict[str, str | list[str]]
    stale: tuple[str, ...] = ()
    topics: tuple[str, ...] = ("offers", "news")
    frequency: str = "as_published"
    channels: dict[str, list[str]] = field(default_factory=dict)
    status: SubscriptionStatus = SubscriptionStatus.SUBSCRIBED
    paused_weeks: int = 0
    services: dict[str, str] = field(default_factory=dict)
    reviewed_days_ago: int = 30


def _address(salutation: str, first: str, last: str, street: str, postal_code: str, city: str) -> dict[str, Any]:
    keys = ("salutation", "first_name", "last_name", "street", "postal_code", "city")
    return dict(zip(keys, (salutation, first, last, street, postal_code, city), strict=True))


DEMO_PROFILES = (
    DemoProfile("anna.schmidt@example.com", "de", "complete and fresh", frequency="weekly",
                values=_address("ms", "Anna", "Schmidt", "Lindenstraße 5", "10969", "Berlin")
                | {"interests": ["cooking", "garden"]}),
    DemoProfile("ben.miller@example.com", "en", "missing last name and city (review due)", {"first_name": "Ben"},
                topics=("offers", "events")),
    DemoProfile("clara.weber@example.com", "de", "address confirmed 400 days ago (review due)",
                _address("ms", "Clara", "Weber", "Marktplatz 2", "50667", "Köln"),
                stale=("street", "postal_code", "city"), topics=("news",), frequency="monthly"),
    DemoProfile("david.jones@example.com", "en", "paused for 4 weeks",
                {"first_name": "David", "last_name": "Jones", "city": "Munich"}, paused_weeks=4),
    DemoProfile("eva.fischer@example.com", "de",
                "SMS for offers (number confirmed), Delivery Plus booked, last review 200 days ago (due)",
                {"first_name": "Eva", "last_name": "Fischer", "city": "Hamburg", "phone": "+491701234567",
                 "birthday": "1988-06-14"}, channels={"offers": ["email", "sms"]}, reviewed_days_ago=200,
                services={"delivery_plus": "monthly", "birthday_club": "member"}),
    DemoProfile("frank.neumann@example.com", "de", "subscription not yet confirmed (double opt-in pending)",
                {"first_name": "Frank"}, status=SubscriptionStatus.PENDING),
)  # fmt: skip


def _profile(demo: DemoProfile, now: dt.datetime, consent_version: str, sms_consent_version: str) -> models.Profile:
    confirmed, old = now - dt.timedelta(days=20), now - dt.timedelta(days=400)
    subscribed = demo.status == SubscriptionStatus.SUBSCRIBED
    sms_confirmed = subscribed and any("sms" in channels for channels in demo.channels.values())
    return models.Profile(
        email=demo.email,
        verified_phone=str(demo.values["phone"]) if sms_confirmed else None,
        sms_consent_version=sms_consent_version if sms_confirmed else None,
        locale=demo.locale,
        status=demo.status,
        consent_version=consent_version if subscribed else None,
        fields={key: models.FieldValue(value=value, confirmed_at=old if key in demo.stale else confirmed)
                for key, value in demo.values.items()},
        preferences=models.Preferences(
            topics=dict.fromkeys(demo.topics, True), frequency=demo.frequency, channels=dict(demo.channels),
            paused_until=now + dt.timedelta(weeks=demo.paused_weeks) if demo.paused_weeks else None,
        ),
        services={key: models.ServiceBooking(service_id=key, option=option, booked_at=confirmed, changed_at=confirmed)
                  for key, option in demo.services.items()},
        created_at=now - dt.timedelta(days=max(demo.reviewed_days_ago, 450)),
        updated_at=confirmed,
        last_reviewed_at=now - dt.timedelta(days=demo.reviewed_days_ago),
    )  # fmt: skip


def seed_demo_profiles(settings: Settings | None = None) -> list[dict[str, Any]]:
    """Create the demo profiles (once) and return them with a fresh link to their pages."""
    service = wiring(settings or get_settings())
    now = dt.datetime.now(dt.UTC)
    consent = service.catalog.current_consent(now.date()).version
    sms_consent = service.catalog.sms_rules().current_consent(now.date()).version
    seeded = []
    for demo in DEMO_PROFILES:
        profile = service.repository.find_by_email(demo.email)
        if profile is None:
            profile = _profile(demo, now, consent, sms_consent)
            entry = functools.partial(models.LedgerEntry, profile_id=profile.id, at=profile.created_at)
            entries = [entry(kind=models.LedgerKind.PROFILE_CREATED, source=models.Source.SYSTEM)]
            if demo.status == SubscriptionStatus.SUBSCRIBED:
                entries.append(entry(kind=models.LedgerKind.CONSENT_GIVEN, source=models.Source.CONFIRMATION_LINK,
                                     consent_version=consent, topics=list(demo.topics)))  # fmt: skip
            if profile.verified_phone:
                by_sms = [topic for topic, channels in demo.channels.items() if "sms" in channels]
                entries.append(entry(kind=models.LedgerKind.CONSENT_GIVEN, source=models.Source.PAGE,
                                     consent_version=sms_consent, topics=by_sms,
                                     detail={"channel": "sms", "phone": profile.verified_phone}))  # fmt: skip
            service.repository.create(profile, entries)
        link = service.link(profile, Purpose.MANAGE, "/link")
        seeded.append({"email": demo.email, "locale": demo.locale, "note": demo.note, "profile_id": profile.id,
                       "link": link})  # fmt: skip
    return seeded
