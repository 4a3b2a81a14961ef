import datetime as dt
from pathlib import Path

import pytest

from selfservice.catalog import Catalog, load_catalog
from selfservice.domain.models import FieldValue, Preferences, Profile, SubscriptionStatus

CATALOG_FILE = Path(__file__).resolve().parents[2] / "templates" / "catalog.yaml"
NOW = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog(CATALOG_FILE)


@pytest.fixture
def now() -> dt.datetime:
    return NOW


@pytest.fixture
def profile() -> Profile:
    confirmed = NOW - dt.timedelta(days=10)
    return Profile(
        id="0" * 32,
        email="anna@example.com",
        locale="de",
        status=SubscriptionStatus.SUBSCRIBED,
        fields={
            "first_name": FieldValue(value="Anna", confirmed_at=confirmed),
            "last_name": FieldValue(value="Schmidt", confirmed_at=confirmed),
            "city": FieldValue(value="Berlin", confirmed_at=confirmed),
        },
        preferences=Preferences(topics={"offers": True, "news": False, "partner_offers": True}, frequency="weekly"),
        created_at=NOW - dt.timedelta(days=100),
        updated_at=confirmed,
        version=3,
    )
