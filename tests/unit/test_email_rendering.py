"""Emails: both languages, both parts, CSS inlined, customer input escaped, headers ours."""

import email
from email.policy import default
from pathlib import Path

import pytest

from selfservice.mail import EmailRenderer, build_mime

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
