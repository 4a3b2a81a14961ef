"""The catalog marketing edits: the shipped file is valid, and a wrong edit names the wrong field."""

import copy
import datetime as dt
from pathlib import Path

import pytest
import yaml

from selfservice.catalog import CatalogError, load_catalog, parse_catalog

CATALOG_FILE = Path(__file__).resolve().parents[2] / "templates" / "catalog.yaml"


@pytest.fixture
def raw() -> dict:
    return yaml.safe_load(CATALOG_FILE.read_text(encoding="utf-8"))


def test_shipped_catalog_is_valid_and_offers_topics_services_and_fields():
    catalog = load_catalog(CATALOG_FILE)
    assert {t.id for t in catalog.visible_topics()} >= {"offers", "news"}
    assert catalog.topic("partner_offers").hidden, "a hidden topic exists to prove it is never shown"
    assert catalog.frequency(catalog.default_frequency) is not None
    assert catalog.service("delivery_plus").option("yearly") is not None
    assert [f.id for f in catalog.fields if f.required] == ["first_name", "last_name", "city"]
    assert catalog.review.interval_days == 182
    assert catalog.current_consent(dt.date(2026, 11, 23)).version == "2026-01"


def test_every_text_has_german_and_english(raw):
    for topic in raw["topics"]:
        assert set(topic["name"]) == {"de", "en"}
        assert set(topic["description"]) == {"de", "en"}


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda c: c["topics"][1].update(expected_frequency="daily"), "topics[1].expected_frequency"),
        (lambda c: c["topics"][0].update(channels=["email", "fax"]), "topics[0].channels[1]"),
        (lambda c: c["topics"][2]["name"].pop("en"), "topics[2].name.en"),
        (lambda c: c["fields"][0].update(type="colour"), "fields[0].type"),
        (lambda c: c["fields"][1].update(max_age_days=0), "fields[1].max_age_days"),
        (lambda c: c["fields"][0].update(choices=[]), "fields[0].choices"),
        (lambda c: c["services"][2].update(requires_fields=["shoe_size"]), "services[2].requires_fields"),
        (lambda c: c["review"].pop("cooldown_days"), "review.cooldown_days"),
        (lambda c: c.update(default_frequency="hourly"), "default_frequency"),
        (lambda c: c["topics"].append(copy.deepcopy(c["topics"][0])), "topics[5].id"),
        (lambda c: c["topics"][0].update(colour="red"), "topics[0].colour"),
        (lambda c: c["company"]["imprint_url"].update(de="http://www.example.com/impressum"), "company.imprint_url.de"),
        (lambda c: c["company"].pop("privacy_policy_url"), "company.privacy_policy_url"),
        (lambda c: c["request_types"].pop(1), "request_types"),
        (lambda c: c["request_types"][0].update(id="refund"), "request_types[0].id"),
        (lambda c: c["frequencies"][0].pop("cadence"), "frequencies[0].cadence"),
    ],
)
def test_invalid_catalog_names_the_wrong_field(raw, edit, field):
    edit(raw)
    with pytest.raises(CatalogError) as error:
        parse_catalog(raw)
    assert error.value.field == field
    assert field in str(error.value)


def test_broken_yaml_is_reported(tmp_path):
    broken = tmp_path / "catalog.yaml"
    broken.write_text("topics: [unclosed\n", encoding="utf-8")
    with pytest.raises(CatalogError, match="not valid YAML"):
        load_catalog(broken)


def test_every_request_type_of_the_domain_has_a_name_in_both_languages():
    from selfservice.domain.models import RequestType

    catalog = load_catalog(CATALOG_FILE)
    assert {spec.id for spec in catalog.request_types} == {t.value for t in RequestType}
    assert catalog.request_type("address_change").label.get("de") == "Anschrift oder E-Mail-Adresse ändern"


def test_the_legal_pages_are_linked_per_language():
    company = load_catalog(CATALOG_FILE).company
    assert company.imprint_url.get("de") != company.imprint_url.get("en")
    assert company.privacy_policy_url.get("en").startswith("https://")
