"""Emails: both languages, both parts, CSS inlined, customer input escaped, headers ours."""

import datetime as dt
import email
import re
from email.policy import default
from pathlib import Path

import pytest

from selfservice.catalog import load_catalog
from selfservice.domain.models import CustomerRequest, Profile, RequestType, new_request_id
from selfservice.mail import EmailRenderer, build_mime
from selfservice.web.render import load_translations

CONTENT = Path(__file__).resolve().parents[2] / "templates"


@pytest.fixture(scope="module")
def renderer() -> EmailRenderer:
    return EmailRenderer(CONTENT)


def render(renderer, language, first_name="Anna"):
    return renderer.render(
        "self_service_link",
        language,
        marketing=False,
        link="https://example.com/link?token=abc",
        valid_days=30,
        first_name=first_name,
        recipient="anna@example.com",
        company="Example Shop",
    )


def test_language_decides_subject_and_text(renderer):
    german, english = render(renderer, "de"), render(renderer, "en")
    assert german.subject == "Ihr Link zu Ihren Einstellungen"
    assert english.subject == "Your link to your preferences"
    assert "Hallo Anna" in german.text
    assert "Hello Anna" in english.text
    assert 'lang="de"' in german.html
    assert 'lang="en"' in english.html


def test_css_is_inlined_and_link_present(renderer):
    rendered = render(renderer, "en")
    assert 'class="button"' in rendered.html
    assert "style=" in rendered.html
    assert 'href="https://example.com/link?token=abc"' in rendered.html
    assert "https://example.com/link?token=abc" in rendered.text


def test_customer_input_is_escaped_in_html(renderer):
    rendered = render(renderer, "en", first_name='<script>alert("x")</script>')
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;" in rendered.html


def test_mime_has_text_and_html_parts_and_our_headers(renderer):
    raw = build_mime(
        render(renderer, "de"),
        "service@example.com",
        "anna@example.com",
        {"List-Unsubscribe": "<https://example.com/u>", "Feedback-ID": "a:b:c:d"},
    )
    message = email.message_from_bytes(raw, policy=default)
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert message["List-Unsubscribe"] == "<https://example.com/u>"
    assert message["Content-Language"] == "de"
    assert message["Subject"] == "Ihr Link zu Ihren Einstellungen"
    assert "Hallo Anna" in message.get_body(("plain",)).get_content()


# --- every email type: legal footer, footer size, wording that matches what the customer does -----

SENT = dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC)


def every_email(renderer, language):
    """One of each email type, with what its caller passes."""
    catalog = load_catalog(CONTENT / "catalog.yaml")
    profile = Profile(email="anna@example.com")
    request = CustomerRequest(
        id=new_request_id(profile.id),
        profile_id=profile.id,
        type=RequestType.ADDRESS_CHANGE,
        message="Neue Anschrift",
        created_at=SENT,
        updated_at=SENT,
    )
    common = {"recipient": "anna@example.com", "company": "Example Shop"}
    links = {"manage_link": "https://x/m", "confirm_link": "https://x/c", "settings_link": "https://x/s"}
    return {
        "self_service_link": render(renderer, language),
        "confirm_subscription": renderer.render(
            "confirm_subscription", language, marketing=False, link="https://x/confirm", topics=["News"], **common
        ),
        "review_request": renderer.render(
            "review_request",
            language,
            marketing=True,
            first_name="Anna",
            missing=["City"],
            stale=[],
            unsubscribe_link="https://x/u",
            valid_days=30,
            **links,
            **common,
        ),
        "service_request": renderer.render(
            "service_request",
            language,
            marketing=False,
            request=request,
            profile=profile,
            type_label=catalog.request_type("address_change").label.get(language),
            **common,
        ),
        "request_update": renderer.render(
            "request_update",
            language,
            marketing=False,
            link="https://x/requests",
            reply="Wir haben Ihre neue Anschrift gespeichert.",
            closed=True,
            submitted_at=SENT,
            type_label=catalog.request_type("address_change").label.get(language),
            first_name="Anna",
            **common,
        ),
    }


def footer_of(html: str) -> str:
    return html[html.index('class="footer"') :]


@pytest.mark.parametrize("language", ["de", "en"])
def test_every_email_links_imprint_and_privacy_policy_in_its_language(renderer, language):
    company = load_catalog(CONTENT / "catalog.yaml").company
    imprint, privacy = company.imprint_url.get(language), company.privacy_policy_url.get(language)
    names = ("Impressum", "Datenschutzerklärung") if language == "de" else ("Legal notice", "Privacy policy")
    for email_type, rendered in every_email(renderer, language).items():
        footer = footer_of(rendered.html)
        assert f'href="{imprint}"' in footer, email_type
        assert f'href="{privacy}"' in footer, email_type
        assert all(name in footer for name in names), email_type
        text_footer = rendered.text.rpartition("\n--\n")[2]
        assert f"{names[0]}: {imprint}" in text_footer, email_type
        assert f"{names[1]}: {privacy}" in text_footer, email_type


@pytest.mark.parametrize("language", ["de", "en"])
def test_the_footer_is_12_px_after_inlining(renderer, language):
    for email_type, rendered in every_email(renderer, language).items():
        sizes = re.findall(r"font-size:\s*(\d+)px", footer_of(rendered.html))
        assert sizes, email_type
        assert set(sizes) == {"12"}, f"{email_type}: the footer has font sizes {sorted(set(sizes))}"


@pytest.mark.parametrize(
    ("language", "button"), [("de", "Ja, ich möchte diese Newsletter"), ("en", "Yes, I want these newsletters")]
)
def test_the_confirmation_email_describes_the_two_steps_it_takes(renderer, language, button):
    """The link opens a page with a button (a mail scanner confirms nothing), so it is not "one click"."""
    rendered = every_email(renderer, language)["confirm_subscription"]
    page_button = load_translations(CONTENT, language).gettext("Yes, I want these newsletters")
    assert page_button == button, "the email names the button the page shows"
    for part in (rendered.html, rendered.text):
        assert button in part
        assert not re.search(r"one click|einem Klick", part, re.IGNORECASE)
    review = every_email(renderer, language)["review_request"]
    assert not re.search(r"one click|einem Klick", review.html + review.text, re.IGNORECASE)


def test_the_service_mailbox_reads_the_request_type_by_name_and_the_time_in_german(renderer):
    rendered = every_email(renderer, "de")["service_request"]
    assert rendered.subject.startswith("Neue Kundenanfrage: Anschrift oder E-Mail-Adresse ändern (")
    assert "address_change" not in rendered.subject + rendered.text + rendered.html
    assert "Eingegangen: 1. Dezember 2026, 10:30" in rendered.text
