"""The hosted pages through the HTTP-API gateway on moto: access, CSRF, GET safety, forms, privacy."""

from __future__ import annotations

import email
import json
import re
from email.policy import default
from urllib.parse import parse_qs, urlparse

import pytest
from itsdangerous.timed import TimestampSigner

from devstack.demo import seed_demo_profiles
from selfservice.settings import DEVELOPMENT_TOKEN_SECRET
from selfservice.tokens import Purpose, TokenSigner
from selfservice.web.views import SIGNED_IN_PAGES

PAGES = [*SIGNED_IN_PAGES, "/new-link", "/privacy/export"]


@pytest.fixture
def demo(stack):
    return {entry["email"]: entry for entry in seed_demo_profiles()}


def token_of(link: str) -> str:
    return parse_qs(urlparse(link).query)["token"][0]


def sign_in(stack, link: str):
    path = link.replace("http://127.0.0.1:3000", "")
    response = stack.client.get(path)
    assert response.status_code == 303, response.get_data(as_text=True)[:300]
    return response


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def version_of(html: str) -> str:
    return re.search(r'name="version" value="(\d+)"', html).group(1)


def get(stack, path):
    response = stack.client.get(path)
    return response.status_code, response.get_data(as_text=True), response


def profile_item(stack, profile_id):
    return stack.request("GET", f"/api/profiles/{profile_id}").json


def test_link_is_exchanged_for_a_session_cookie_and_a_url_without_token(stack, demo):
    anna = demo["anna.schmidt@example.com"]
    response = sign_in(stack, anna["link"] + "&next=/profile")
    assert response.headers["Location"] == "/profile"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("ss_session=")
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Max-Age=3600" in cookie
    status, html, _ = get(stack, "/profile")
    assert status == 200
    assert "<h1>Persönliche Daten</h1>" in html, "Anna's profile is German"


def test_next_never_leaves_the_site(stack, demo):
    response = sign_in(stack, demo["anna.schmidt@example.com"]["link"] + "&next=//evil.example.com/x")
    assert response.headers["Location"] == "/"


@pytest.mark.parametrize("kind", ["tampered", "wrong purpose", "expired", "revoked", "unknown profile"])
def test_bad_tokens_are_refused_with_a_friendly_page(stack, demo, kind, monkeypatch):
    anna = demo["anna.schmidt@example.com"]
    signer = TokenSigner([DEVELOPMENT_TOKEN_SECRET])
    token = token_of(anna["link"])
    if kind == "tampered":
        token = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    elif kind == "wrong purpose":
        token = signer.issue(anna["profile_id"], 0, Purpose.UNSUBSCRIBE)
    elif kind == "expired":
        monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: 10**10)
    elif kind == "revoked":
        sign_in(stack, anna["link"])
        _status, html, _ = get(stack, "/")
        assert stack.client.post("/sign-out", data={"csrf": csrf_of(html)}).status_code == 200
    elif kind == "unknown profile":
        token = signer.issue("f" * 32, 0, Purpose.MANAGE)
    response = stack.client.get(f"/link?token={token}")
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "ss_session=" not in response.headers.get("Set-Cookie", "")
    assert 'href="/new-link"' in html
    assert "Traceback" not in html


def test_revoked_session_stops_working(stack, demo):
    sign_in(stack, demo["anna.schmidt@example.com"]["link"])
    _status, html, _ = get(stack, "/")
    stack.client.post("/sign-out", data={"csrf": csrf_of(html)})
    status, html, _ = get(stack, "/profile")
    assert status == 401
    assert "Anna" not in html


def test_get_of_every_page_changes_nothing(stack, demo):
    sign_in(stack, demo["clara.weber@example.com"]["link"])
    before = stack.items()
    for path in [*PAGES, "/profile?focus=city", "/link?token=garbage", "/nope"]:
        status, _html, _ = get(stack, path)
        assert status < 500, path
    assert stack.items() == before
    assert stack.sent_emails() == []


def test_every_page_is_sent_with_security_headers(stack, demo):
    sign_in(stack, demo["anna.schmidt@example.com"]["link"])
    for path in PAGES:
        _status, _html, response = get(stack, path)
        csp = response.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp, path
        assert "default-src 'none'" in csp, "no script source at all: nothing inline or foreign can run"
        assert "script-src" not in csp
        assert "'unsafe-inline'" not in csp
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["Strict-Transport-Security"].startswith("max-age=")
        assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    "path", ["/profile", "/communication", "/services", "/requests", "/review", "/privacy/delete", "/sign-out"]
)
@pytest.mark.parametrize("csrf", [None, "forged"])
def test_post_without_the_right_csrf_token_is_refused_and_changes_nothing(stack, demo, path, csrf):
    sign_in(stack, demo["anna.schmidt@example.com"]["link"])
    _status, html, _ = get(stack, "/profile")
    before = stack.items()
    data = {
        "version": version_of(html),
        "first_name": "Mallory",
        "last_name": "X",
        "city": "Y",
        "type": "question",
        "message": "hi",
        "frequency": "monthly",
    }
    if csrf:
        data["csrf"] = csrf
    response = stack.client.post(path, data=data)
    assert response.status_code == 403
    assert stack.items() == before


def claras_personal_data(html: str, **fields: str) -> dict[str, str]:
    """The personal data form of the demo customer Clara, moved to Bonn, with ``fields`` filled in."""
    return {
        "csrf": csrf_of(html),
        "version": version_of(html),
        "salutation": "ms",
        "first_name": "Clara",
        "last_name": "Weber",
        "street": "Marktplatz 2",
        "postal_code": "50667",
        "city": "Bonn",
        **fields,
    }


def test_personal_data_saves_only_changed_fields_and_shows_errors_next_to_fields(stack, demo):
    clara = demo["clara.weber@example.com"]
    sign_in(stack, clara["link"])
    _status, html, _ = get(stack, "/profile")
    before = profile_item(stack, clara["profile_id"])
    form = claras_personal_data(html, phone="0151", birthday="2999-01-01")
    response = stack.client.post("/profile", data=form)
    text = response.get_data(as_text=True)
    assert response.status_code == 422
    assert re.search(r'id="phone-error">Bitte geben Sie die Nummer im Feld „Mobilnummer“ international an', text)
    assert re.search(r'id="birthday-error">Bitte geben Sie im Feld „Geburtsdatum“ ein Datum zwischen 1900 und', text)
    assert 'aria-invalid="true" aria-describedby="phone-error"' in text
    assert 'value="Bonn"' in text, "the customer's input is kept in the form"
    assert profile_item(stack, clara["profile_id"]) == before, "nothing stored"
    form.update(phone="+49 221 123456", birthday="")
    response = stack.client.post("/profile", data=form)
    assert response.status_code == 303
    after = profile_item(stack, clara["profile_id"])
    assert after["fields"]["city"]["value"] == "Bonn"
    assert after["fields"]["phone"]["value"] == "+49221123456"
    assert after["fields"]["street"]["confirmed_at"] == before["fields"]["street"]["confirmed_at"], "unchanged field"
    assert after["fields"]["city"]["confirmed_at"] != before["fields"]["city"]["confirmed_at"]


def test_saving_over_a_stale_version_shows_current_values(stack, demo):
    anna = demo["anna.schmidt@example.com"]
    sign_in(stack, anna["link"])
    _status, html, _ = get(stack, "/profile")
    stack.request("PATCH", f"/api/profiles/{anna['profile_id']}", {"fields": {"city": "Hamburg"}})
    form = {
        "csrf": csrf_of(html),
        "version": version_of(html),
        "salutation": "ms",
        "first_name": "Anna",
        "last_name": "Schmidt",
        "city": "Dresden",
    }
    response = stack.client.post("/profile", data=form)
    text = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "an anderer Stelle geändert" in text
    assert 'value="Dresden"' in text, "what the customer typed is kept"
    assert "Jetzt gespeichert: Hamburg" in text, "next to what is stored now"
    assert f'name="version" value="{int(version_of(html)) + 1}"' in text, "saving again applies to the new version"
    assert profile_item(stack, anna["profile_id"])["fields"]["city"]["value"] == "Hamburg"


def test_hidden_topics_are_never_touched_by_the_communication_page(stack, demo):
    anna = demo["anna.schmidt@example.com"]
    from selfservice.bootstrap import wiring
    from selfservice.settings import get_settings

    service = wiring(get_settings())
    profile = service.repository.get(anna["profile_id"])
    profile.preferences.topics["partner_offers"] = True
    service.repository.save(profile.model_copy(update={"version": profile.version + 1}), profile.version, [])
    sign_in(stack, anna["link"])
    _status, html, _ = get(stack, "/communication")
    assert "partner_offers" not in html
    response = stack.client.post(
        "/communication",
        data={
            "csrf": csrf_of(html),
            "version": version_of(html),
            "topics_shown": "1",
            "topic": ["news"],
            "frequency": "monthly",
        },
    )
    assert response.status_code == 303
    topics = profile_item(stack, anna["profile_id"])["preferences"]["topics"]
    assert topics["partner_offers"] is True
    assert topics["offers"] is False
    assert topics["news"] is True


def test_new_link_form_answers_the_same_for_known_and_unknown_addresses_and_is_rate_limited(stack, demo):
    _status, html, _ = get(stack, "/new-link")
    answers = []
    for address in ["anna.schmidt@example.com", "nobody@example.com"]:
        response = stack.client.post("/new-link", data={"csrf": csrf_of(html), "email": address})
        answers.append(
            (response.status_code, re.sub(r'name="csrf" value="[^"]+"', "", response.get_data(as_text=True)))
        )
    assert answers[0] == answers[1]
    assert len(stack.sent_emails()) == 1
    for _ in range(5):
        stack.client.post("/new-link", data={"csrf": csrf_of(html), "email": "anna.schmidt@example.com"})
    assert len(stack.sent_emails()) == 3, "three links per address and hour, then silence"
    refused = stack.client.post("/new-link", data={"csrf": csrf_of(html), "email": "anna.schmidt@example.com"})
    assert (refused.status_code, re.sub(r'name="csrf" value="[^"]+"', "", refused.get_data(as_text=True))) == answers[0]


def test_new_link_without_csrf_is_refused(stack, demo):
    response = stack.client.post("/new-link", data={"email": "anna.schmidt@example.com"})
    assert response.status_code == 403
    assert stack.sent_emails() == []


def test_request_is_stored_routed_and_visible(stack, demo):
    ben = demo["ben.miller@example.com"]
    sign_in(stack, ben["link"])
    _status, html, _ = get(stack, "/requests")
    response = stack.client.post("/requests", data={"csrf": csrf_of(html), "type": "complaint", "message": ""})
    assert response.status_code == 422
    assert 'id="message-error">Please write your message.' in response.get_data(as_text=True)
    response = stack.client.post(
        "/requests", data={"csrf": csrf_of(html), "type": "complaint", "message": "My parcel <b>never</b> arrived."}
    )
    assert response.status_code == 303
    _status, html, _ = get(stack, "/requests?sent=1")
    assert "My parcel &lt;b&gt;never&lt;/b&gt; arrived." in html
    assert "received" in html
    [mail] = stack.sent_emails()
    message = email.message_from_string(mail.raw_data, policy=default)
    assert message["To"] == "complaints@example.com", "the catalog routes complaints to their own mailbox"
    assert message["Reply-To"] == "ben.miller@example.com", "customer service answers the customer directly"
    assert "My parcel <b>never</b> arrived." in message.get_body(("plain",)).get_content()
    assert "My parcel &lt;b&gt;never&lt;/b&gt; arrived." in message.get_body(("html",)).get_content()
    _status, html, _ = get(stack, "/requests")
    stack.client.post("/requests", data={"csrf": csrf_of(html), "type": "question", "message": "Opening hours?"})
    question = email.message_from_string(stack.sent_emails()[-1].raw_data, policy=default)
    assert question["To"] == "customer-service@example.com", "a type without a mailbox goes to ServiceMailbox"


def test_download_my_data_and_delete_my_profile(stack, demo):
    eva = demo["eva.fischer@example.com"]
    sign_in(stack, eva["link"])
    status, body, response = get(stack, "/privacy/export")
    assert status == 200
    assert response.headers["Content-Disposition"] == 'attachment; filename="my-data.json"'
    document = json.loads(body)
    assert document["profile"]["email"] == "eva.fischer@example.com"
    assert document["profile"]["services"]["delivery_plus"]["option"] == "monthly"
    assert document["history"], "the ledger is part of the export"
    _status, html, _ = get(stack, "/privacy/delete")
    response = stack.client.post("/privacy/delete", data={"csrf": csrf_of(html)})
    assert response.status_code == 200
    assert "gelöscht" in response.get_data(as_text=True)
    remaining = [item for item in stack.items() if eva["profile_id"] in item["pk"]["S"]]
    assert remaining == []
    assert not any("eva.fischer" in json.dumps(item) for item in stack.items()), "no trace of the address"
    assert any(item["pk"]["S"].startswith("SUPPRESSED#") for item in stack.items())
    assert get(stack, "/")[0] == 200
    assert get(stack, "/profile")[0] == 401


def test_saving_personal_data_reads_the_profile_once_and_writes_once(stack, demo):
    """One GetItem (session check and the change share it) and one transaction with its ledger entry."""
    from selfservice import aws

    clara = demo["clara.weber@example.com"]
    sign_in(stack, clara["link"])
    _status, html, _ = get(stack, "/profile")
    calls: list[str] = []
    aws.client("dynamodb").meta.events.register(
        "before-call.dynamodb", lambda model, **_: calls.append(model.name), unique_id="count-profile-save"
    )
    form = claras_personal_data(html, phone="+49 221 123456", birthday="")
    response = stack.client.post("/profile", data=form)
    aws.client("dynamodb").meta.events.unregister("before-call.dynamodb", unique_id="count-profile-save")
    assert response.status_code == 303
    assert calls == ["GetItem", "TransactWriteItems"]
    assert profile_item(stack, clara["profile_id"])["fields"]["city"]["value"] == "Bonn"


def new_customer_signed_in(stack) -> str:
    """A shop customer with no personal data yet, signed in from a self-service link."""
    created = stack.request("POST", "/api/profiles", {"email": "neukunde@example.com"}).json
    token = TokenSigner([DEVELOPMENT_TOKEN_SECRET]).issue(created["id"], 0, Purpose.MANAGE)
    sign_in(stack, f"/link?token={token}")
    return created["id"]


def test_a_first_name_alone_is_saved_and_the_missing_required_fields_are_asked_for(stack):
    profile_id = new_customer_signed_in(stack)
    _status, html, _ = get(stack, "/profile")
    response = stack.client.post(
        "/profile", data={"csrf": csrf_of(html), "version": version_of(html), "first_name": "Mia"}
    )
    assert response.status_code == 303, "required fields never block saving what was entered"
    assert profile_item(stack, profile_id)["fields"]["first_name"]["value"] == "Mia"
    _status, html, _ = get(stack, "/profile?saved=1")
    assert "Es fehlt uns noch: Nachname, Ort." in html


def test_everything_is_correct_leads_to_the_missing_required_fields_first(stack):
    profile_id = new_customer_signed_in(stack)
    _status, overview, _ = get(stack, "/")
    assert 'href="/profile?focus=first_name,last_name,city"' in overview
    assert 'action="/review"' not in overview, "no confirming while required fields are empty"
    _status, review, _ = get(stack, "/review")
    assert "Bevor Sie bestätigen, fehlt uns noch: Vorname, Nachname, Ort." in review
    # a stale tab still posts the old form: it is led to the fields, nothing is confirmed
    response = stack.client.post("/review", data={"csrf": csrf_of(overview), "version": "1"})
    assert response.status_code == 303
    assert response.headers["Location"] == "/profile?focus=first_name,last_name,city"
    history = stack.request("GET", f"/api/profiles/{profile_id}/history").json["entries"]
    assert [entry["kind"] for entry in history] == ["profile_created"]


def test_the_language_switch_becomes_the_profiles_language_and_so_the_emails(stack, demo):
    anna = demo["anna.schmidt@example.com"]
    sign_in(stack, anna["link"])
    _status, html, _ = get(stack, "/")
    response = stack.client.post("/language", data={"csrf": csrf_of(html), "lang": "en", "back": "/"})
    assert response.status_code == 303
    assert profile_item(stack, anna["profile_id"])["locale"] == "en"
    stack.request("POST", f"/api/profiles/{anna['profile_id']}/self-service-link")
    [sent] = [email.message_from_string(m.raw_data, policy=default) for m in stack.sent_emails()]
    assert sent["To"] == "anna.schmidt@example.com"
    assert sent.get_body(("plain",)).get_content().startswith("Hello Anna,"), "the email speaks English now"


def test_switching_language_on_a_form_with_errors_keeps_what_was_typed(stack, demo):
    clara = demo["clara.weber@example.com"]
    sign_in(stack, clara["link"])
    _status, html, _ = get(stack, "/profile")
    assert 'formaction="/profile"' in html
    assert 'form="page-form"' in html
    before = profile_item(stack, clara["profile_id"])
    form = claras_personal_data(html, city="Bonn", phone="0151")
    response = stack.client.post("/profile", data=form)
    assert response.status_code == 422
    form["switch_language"] = "en"
    switched = stack.client.post("/profile", data=form)
    text = switched.get_data(as_text=True)
    assert switched.status_code == 200
    assert '<html lang="en">' in text
    assert 'value="Bonn"' in text, "typed values stay"
    assert 'value="0151"' in text
    assert 'id="phone-error"' in text, "and the error next to its field, now in English"
    assert "ss_lang=en" in switched.headers.get("Set-Cookie", "")
    after = profile_item(stack, clara["profile_id"])
    assert after["locale"] == "en"
    assert after["fields"] == before["fields"], "nothing but the language is saved"


# --- every page: the legal footer; a wrong address; a failed submit ----------------------------


def legal_links(language: str) -> list[str]:
    from selfservice.settings import get_settings

    company = get_settings().catalog.company
    return [company.imprint_url.get(language), company.privacy_policy_url.get(language)]


def footer_of(html: str) -> str:
    return html[html.index('<footer class="contact">') :]


def test_every_page_and_every_error_page_links_imprint_and_privacy_policy(stack, demo):
    anonymous = {
        "/subscribe": 200,
        "/new-link": 200,
        "/": 200,
        "/no-such-page": 404,
        "/profile": 401,
        "/link?token=broken": 400,
        "/confirm?token=broken": 400,
        "/unsubscribe?token=broken": 400,
    }
    for path, expected in anonymous.items():
        status, html, _ = get(stack, path)
        assert status == expected, path
        for link in legal_links("de"):
            assert f'href="{link}"' in footer_of(html), f"{path} ({status}) has no link to {link}"
    refused = stack.client.post("/subscribe", data={"email": "kim@example.com"})
    assert refused.status_code == 403
    assert all(f'href="{link}"' in footer_of(refused.get_data(as_text=True)) for link in legal_links("de"))

    david = demo["david.jones@example.com"]  # an English profile
    sign_in(stack, david["link"])
    for path in SIGNED_IN_PAGES:
        status, html, _ = get(stack, path)
        assert status == 200, path
        footer = footer_of(html)
        assert all(f'href="{link}"' in footer for link in legal_links("en")), path
        assert ">Legal notice</a>" in footer
        assert ">Privacy policy</a>" in footer


def test_a_wrong_address_offers_the_menu_to_a_signed_in_customer_and_the_start_page_to_anyone_else(stack, demo):
    status, html, _ = get(stack, "/no-such-page")
    assert status == 404
    assert 'class="sections"' not in html
    assert '<a class="button" href="/">Zur Startseite</a>' in html
    sign_in(stack, demo["anna.schmidt@example.com"]["link"])
    status, html, _ = get(stack, "/no-such-page")
    assert status == 404
    assert '<nav class="sections"' in html, "the text points to the menu, so the menu is there"
    assert "oben im Menü" in html


def summary_targets(html: str) -> list[str]:
    """The fields the error summary links to; each must be an element of the page."""
    summary = r'<div class="notice error error-summary" id="error-summary" tabindex="-1" autofocus.*?</div>'
    match = re.search(summary, html, re.S)
    assert match, "a failed submit shows the error summary, focused on load"
    targets = re.findall(r'href="#([\w-]+)"', match.group(0))
    for target in targets:
        assert f'id="{target}"' in html, f"the summary links to #{target}, which the page does not have"
    return targets


def test_after_a_failed_submit_every_form_starts_at_an_error_summary_linking_each_field(stack, demo):
    sign_in(stack, demo["ben.miller@example.com"]["link"])  # English, no mobile number
    posts = {
        "/profile": lambda html: {**claras_personal_data(html), "first_name": "", "postal_code": "!"},
        "/communication": lambda html: {
            "csrf": csrf_of(html),
            "version": version_of(html),
            "topic": ["offers", "events"],
            "channel-events": "sms",
            "frequency": "hourly",
            "pause_weeks": "3",
        },
        "/services": lambda html: {"csrf": csrf_of(html), "version": version_of(html), "delivery_plus": "weekly"},
        "/requests": lambda html: {"csrf": csrf_of(html), "type": "other", "message": ""},
    }
    expected = {
        "/profile": ["postal_code"],  # an empty required field is asked for, not refused
        "/communication": ["channel-offers", "channel-events", "frequency", "pause_weeks"],
        "/services": ["delivery_plus"],
        "/requests": ["type", "message"],
    }
    for path, form in posts.items():
        _status, html, _ = get(stack, path)
        response = stack.client.post(path, data=form(html))
        page = response.get_data(as_text=True)
        assert response.status_code == 422, path
        assert summary_targets(page) == expected[path], path
        assert re.search(r"<title>Error: ", page), f"{path}: the title says there is a problem"
    stack.client.post("/sign-out", data={"csrf": csrf_of(get(stack, "/")[1])})
    for path, form, targets in [
        ("/subscribe", {"email": "no address"}, ["email", "topics"]),
        ("/new-link", {"email": ""}, ["email"]),
    ]:
        _status, html, _ = get(stack, path)
        response = stack.client.post(path, data={"csrf": csrf_of(html), **form})
        assert response.status_code == 422, path
        assert summary_targets(response.get_data(as_text=True)) == targets, path
