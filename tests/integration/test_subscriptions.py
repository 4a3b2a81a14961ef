"""Subscription lifecycle on moto: double opt-in, consent ledger, opt-down, unsubscribe, one-click."""

from __future__ import annotations

import datetime as dt
import email
import re
from email.policy import default
from urllib.parse import parse_qs, urlparse

import pytest
from itsdangerous.timed import TimestampSigner

from devstack.demo import seed_demo_profiles
from selfservice.bootstrap import wiring
from selfservice.domain.models import Source
from selfservice.mail import EmailRenderer
from selfservice.settings import DEVELOPMENT_TOKEN_SECRET, get_settings
from selfservice.tokens import Purpose, TokenSigner
from selfservice.usecases.subscription import MAX_NOTE, evidence_matches

UA = "Mozilla/5.0 (test)"


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def messages(stack):
    return [email.message_from_string(m.raw_data, policy=default) for m in stack.sent_emails()]


def link_in(message, path: str) -> str:
    text = message.get_body(("plain",)).get_content()
    return next(word for word in text.split() if f"{path}?token=" in word).replace("http://127.0.0.1:3000", "")


def subscribe(stack, address="neu@example.com", topics=("news", "offers")):
    html = stack.client.get("/subscribe", headers={"User-Agent": UA}).get_data(as_text=True)
    return stack.client.post(
        "/subscribe", data={"csrf": csrf_of(html), "email": address, "topic": list(topics)}, headers={"User-Agent": UA}
    )


def history(stack, profile_id):
    return stack.request("GET", f"/api/profiles/{profile_id}/history").json["entries"]


def test_double_opt_in_records_the_consent_with_wording_version_source_and_evidence(stack):
    response = subscribe(stack)
    assert response.status_code == 200
    assert "Bitte sehen Sie in Ihr Postfach" in response.get_data(as_text=True)
    profile = stack.request("GET", "/api/profiles", query={"email": "neu@example.com"}).json
    assert profile["status"] == "pending"
    [confirmation] = messages(stack)
    assert confirmation["Subject"] == "Bitte bestätigen Sie Ihr Newsletter-Abonnement"
    assert confirmation["List-Unsubscribe"] is None, "a transactional email"
    link = link_in(confirmation, "/confirm")
    assert f'href="http://127.0.0.1:3000{link}"' in confirmation.get_body(("html",)).get_content().replace("&amp;", "&")

    # opening the link (a mail scanner does) confirms nothing
    page = stack.client.get(link, headers={"User-Agent": UA})
    assert page.status_code == 200
    assert stack.request("GET", f"/api/profiles/{profile['id']}").json["status"] == "pending"

    html = page.get_data(as_text=True)
    token = re.search(r'name="token" value="([^"]+)"', html).group(1)
    confirmed = stack.client.post("/confirm", data={"csrf": csrf_of(html), "token": token}, headers={"User-Agent": UA})
    assert confirmed.status_code == 303
    assert confirmed.headers["Location"] == "/?welcome=1"
    stored = stack.request("GET", f"/api/profiles/{profile['id']}").json
    assert stored["status"] == "subscribed"
    assert stored["consent_version"] == "2026-01"
    consent = next(entry for entry in history(stack, profile["id"]) if entry["kind"] == "consent_given")
    assert consent["source"] == "confirmation-link"
    assert consent["consent_version"] == "2026-01"
    assert consent["topics"] == ["news", "offers"]
    assert evidence_matches(consent["detail"], "127.0.0.1", UA)
    assert not evidence_matches(consent["detail"], "10.0.0.1", UA)
    assert "127.0.0.1" not in str(consent), "only the salted hash is kept"
    assert UA not in str(consent)
    claim = next(i for i in stack.items() if i["pk"]["S"] == "EMAIL#neu@example.com")
    assert "expires_at" not in claim, "a confirmed address no longer expires"


def test_a_second_subscribe_within_ten_minutes_sends_no_second_email(stack):
    subscribe(stack)
    subscribe(stack)
    subscribe(stack, topics=("events",))
    assert len(messages(stack)) == 1


def test_unconfirmed_profile_expires_and_gets_nothing_more(stack, monkeypatch):
    subscribe(stack)
    profiles = [i for i in stack.items() if i["sk"]["S"] == "PROFILE"]
    profile_item = next(i for i in profiles if i["email_key"]["S"] == "neu@example.com")
    expires = dt.datetime.fromtimestamp(int(profile_item["expires_at"]["N"]), dt.UTC)
    assert dt.timedelta(hours=47) < expires - dt.datetime.now(dt.UTC) <= dt.timedelta(hours=48)
    link = link_in(messages(stack)[0], "/confirm")
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: 10**10)
    assert stack.client.get(link).status_code == 400, "after 48 hours the link no longer works"
    monkeypatch.undo()
    service = wiring(get_settings())
    pending = service.repository.find_by_email("neu@example.com")
    marketing = EmailRenderer(get_settings().content_dir).render(
        "self_service_link", "de", marketing=True, link="x", valid_days=1, first_name="", recipient="r", company="c"
    )
    outcome = service.mailer.send(pending, marketing, Source.SYSTEM, unsubscribe_url="https://u.example/x")
    assert outcome.sent is False
    assert outcome.skipped_reason == "unconfirmed"
    assert len(messages(stack)) == 1


def test_api_create_with_topics_starts_a_double_opt_in(stack):
    answer = stack.request("POST", "/api/profiles", {"email": "shop.kunde@example.com", "subscribe": ["offers"]})
    assert answer.status == 201
    assert answer.json["status"] == "pending"
    [confirmation] = messages(stack)
    assert confirmation["To"] == "shop.kunde@example.com"
    assert stack.request("POST", "/api/profiles", {"email": "x@example.com", "subscribe": ["crypto"]}).status == 422


def unsubscribe_link(profile_id: str) -> str:
    return f"/unsubscribe?token={TokenSigner([DEVELOPMENT_TOKEN_SECRET]).issue(profile_id, 0, Purpose.UNSUBSCRIBE)}"


@pytest.fixture
def anna(stack):
    return next(entry for entry in seed_demo_profiles() if entry["email"] == "anna.schmidt@example.com")


def test_unsubscribe_page_offers_opt_down_first_and_saves_the_choice(stack, anna):
    page = stack.client.get(unsubscribe_link(anna["profile_id"]))
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert html.index("Einmal im Monat") < html.index("Von allem abmelden"), "opt-down comes before leaving"
    token = re.search(r'name="token" value="([^"]+)"', html).group(1)
    response = stack.client.post(
        "/unsubscribe",
        data={
            "csrf": csrf_of(html),
            "token": token,
            "action": "opt_down",
            "topic": ["offers", "news"],
            "frequency": "monthly",
            "pause_weeks": "0",
            "reason": "too_many",
        },
    )
    assert response.status_code == 200
    stored = stack.request("GET", f"/api/profiles/{anna['profile_id']}").json
    assert stored["status"] == "subscribed"
    assert stored["preferences"]["frequency"] == "monthly"
    entry = history(stack, anna["profile_id"])[0]
    assert entry["detail"]["unsubscribe_choice"] == "opt_down"
    assert entry["detail"]["reason"] == "too_many"


def test_leaving_withdraws_every_consent_with_reason(stack, anna):
    html = stack.client.get(unsubscribe_link(anna["profile_id"])).get_data(as_text=True)
    token = re.search(r'name="token" value="([^"]+)"', html).group(1)
    response = stack.client.post(
        "/unsubscribe", data={"csrf": csrf_of(html), "token": token, "action": "leave", "reason": "not_relevant"}
    )
    assert response.status_code == 200
    stored = stack.request("GET", f"/api/profiles/{anna['profile_id']}").json
    assert stored["status"] == "unsubscribed"
    assert not any(stored["preferences"]["topics"].values())
    withdrawn = history(stack, anna["profile_id"])[0]
    assert withdrawn["kind"] == "consent_withdrawn"
    assert withdrawn["source"] == "page"
    assert withdrawn["topics"] == ["news", "offers"]
    assert withdrawn["detail"]["reason"] == "not_relevant"


def test_unsubscribe_post_without_csrf_is_refused(stack, anna):
    html = stack.client.get(unsubscribe_link(anna["profile_id"])).get_data(as_text=True)
    token = re.search(r'name="token" value="([^"]+)"', html).group(1)
    response = stack.client.post("/unsubscribe", data={"token": token, "action": "leave"})
    assert response.status_code == 403
    assert stack.request("GET", f"/api/profiles/{anna['profile_id']}").json["status"] == "subscribed"


def test_one_click_is_idempotent_needs_no_cookie_and_a_get_changes_nothing(stack, anna):
    link = unsubscribe_link(anna["profile_id"]).replace("/unsubscribe?", "/unsubscribe/one-click?")
    assert stack.client.get(link).status_code == 200
    assert stack.request("GET", f"/api/profiles/{anna['profile_id']}").json["status"] == "subscribed"
    wrong = stack.client.post(link, data="unsubscribe=yes", content_type="application/x-www-form-urlencoded")
    assert wrong.status_code == 400
    answers = [
        stack.client.post(link, data="List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")
        for _ in range(2)
    ]
    assert [a.status_code for a in answers] == [200, 200]
    assert answers[0].get_data(as_text=True) == answers[1].get_data(as_text=True)
    assert stack.request("GET", f"/api/profiles/{anna['profile_id']}").json["status"] == "unsubscribed"
    withdrawals = [e for e in history(stack, anna["profile_id"]) if e["kind"] == "consent_withdrawn"]
    assert len(withdrawals) == 1
    assert withdrawals[0]["source"] == "one-click"


def test_tampered_unsubscribe_token_is_refused(stack, anna):
    link = unsubscribe_link(anna["profile_id"])
    assert stack.client.get(link[:-3] + "xyz").status_code == 400
    signer = TokenSigner([DEVELOPMENT_TOKEN_SECRET])
    manage = signer.issue(anna["profile_id"], 0, Purpose.MANAGE)
    refused = stack.client.get(f"/unsubscribe?token={manage}")
    assert refused.status_code == 400, "a manage token is not an unsubscribe token"
    token = parse_qs(urlparse(link).query)["token"][0]
    assert signer.verify(token, Purpose.UNSUBSCRIBE)[0] == anna["profile_id"]


def test_switching_language_on_a_link_page_keeps_the_link(stack, anna):
    link = unsubscribe_link(anna["profile_id"])
    html = stack.client.get(link).get_data(as_text=True)
    assert 'lang="de"' in html
    back = re.search(r'name="back" value="([^"]+)"', html).group(1).replace("&amp;", "&")
    assert back == link
    response = stack.client.post("/language", data={"csrf": csrf_of(html), "lang": "en", "back": back})
    assert response.status_code == 303
    assert response.headers["Location"] == link
    assert "<h1>Less instead of nothing?</h1>" in stack.client.get(link).get_data(as_text=True)


def test_a_suppressed_address_gets_no_confirmation_email(stack):
    from selfservice.domain.models import address_hash

    wiring(get_settings()).repository.suppress(
        address_hash("bounced@example.com"), "hard_bounce", dt.datetime.now(dt.UTC)
    )
    answer = stack.request("POST", "/api/profiles", {"email": "bounced@example.com", "subscribe": ["news"]})
    assert answer.status == 201
    assert answer.json["status"] == "not_subscribed"
    assert subscribe(stack, address="bounced@example.com").status_code == 200, "the page answers as always"
    assert messages(stack) == []


def test_something_else_keeps_the_customers_words_with_the_withdrawal_only_and_never_logs_them(stack, anna, caplog):
    page = stack.client.get(unsubscribe_link(anna["profile_id"])).get_data(as_text=True)
    assert re.search(r'<textarea id="reason_text" name="reason_text" rows="3" maxlength="500"', page)
    assert MAX_NOTE == 500, "the text box allows what the use case keeps"
    token = re.search(r'name="token" value="([^"]+)"', page).group(1)
    words = "Ich ziehe\nins Ausland. " + "x" * 600
    response = stack.client.post(
        "/unsubscribe",
        data={"csrf": csrf_of(page), "token": token, "action": "leave", "reason": "other", "reason_text": words},
    )
    assert response.status_code == 200
    withdrawn = history(stack, anna["profile_id"])[0]
    assert withdrawn["kind"] == "consent_withdrawn"
    assert withdrawn["detail"]["reason"] == "other"
    assert withdrawn["detail"]["reason_text"] == ("Ich ziehe ins Ausland. " + "x" * 600)[:500]
    logged = " ".join(f"{record.getMessage()} {record.__dict__}" for record in caplog.records)
    assert "unsubscribed" in logged, "the unsubscription itself is logged"
    assert "ins Ausland" not in logged, "the customer's words are never logged"


def test_words_without_something_else_are_not_kept(stack, anna):
    page = stack.client.get(unsubscribe_link(anna["profile_id"])).get_data(as_text=True)
    token = re.search(r'name="token" value="([^"]+)"', page).group(1)
    stack.client.post(
        "/unsubscribe",
        data={"csrf": csrf_of(page), "token": token, "action": "leave", "reason": "too_many", "reason_text": "typed"},
    )
    withdrawn = history(stack, anna["profile_id"])[0]
    assert withdrawn["detail"]["reason"] == "too_many"
    assert "reason_text" not in withdrawn["detail"]


# --- a double opt-in for an address that has a profile: nothing changes until it is confirmed --------


def profile_state(stack, profile_id):
    """The profile as the API shows it, and its ledger entries other than emails sent."""
    profile = stack.request("GET", f"/api/profiles/{profile_id}").json
    return profile, [entry for entry in history(stack, profile_id) if entry["kind"] != "email_sent"]


def confirm_with(stack, link, user_agent=UA):
    page = stack.client.get(link, headers={"User-Agent": user_agent})
    assert page.status_code == 200, page.get_data(as_text=True)[:300]
    html = page.get_data(as_text=True)
    token = re.search(r'name="token" value="([^"]+)"', html).group(1)
    return html, stack.client.post(
        "/confirm", data={"csrf": csrf_of(html), "token": token}, headers={"User-Agent": user_agent}
    )


def not_subscribed_profile(stack, address):
    return stack.request("POST", "/api/profiles", {"email": address, "locale": "en"}).json["id"]


def unsubscribed_profile(stack, address):
    anna = next(entry for entry in seed_demo_profiles() if entry["email"] == "anna.schmidt@example.com")
    html = stack.client.get(unsubscribe_link(anna["profile_id"])).get_data(as_text=True)
    token = re.search(r'name="token" value="([^"]+)"', html).group(1)
    stack.client.post("/unsubscribe", data={"csrf": csrf_of(html), "token": token, "action": "leave"})
    return anna["profile_id"]


def pending_profile_of_the_shop(stack, address):
    return stack.request("POST", "/api/profiles", {"email": address, "subscribe": ["offers"]}).json["id"]


@pytest.mark.parametrize(
    ("address", "make"),
    [
        ("kunde@example.com", not_subscribed_profile),
        ("anna.schmidt@example.com", unsubscribed_profile),
        ("shop.kunde@example.com", pending_profile_of_the_shop),
    ],
    ids=["not subscribed", "unsubscribed", "pending the shop's opt-in"],
)
def test_subscribing_an_existing_profile_changes_nothing_until_the_owner_confirms(stack, address, make):
    profile_id = make(stack, address)
    before, ledger_before = profile_state(stack, profile_id)
    sent_before = len(messages(stack))

    assert subscribe(stack, address=address, topics=("news", "events")).status_code == 200
    assert profile_state(stack, profile_id) == (before, ledger_before), "no status, topic or version changed"
    confirmation = messages(stack)[sent_before]
    assert confirmation["To"] == address
    link = link_in(confirmation, "/confirm")
    html = stack.client.get(link).get_data(as_text=True)
    shown = set(re.findall(r"<li>([^<]+)</li>", html))
    assert shown in ({"News", "Events"}, {"Neuigkeiten", "Veranstaltungen"}), "the page shows what this link confirms"
    assert profile_state(stack, profile_id) == (before, ledger_before), "opening the link changes nothing"

    _html, confirmed = confirm_with(stack, link, user_agent="Other browser/1.0")
    assert confirmed.status_code == 303
    after, ledger_after = profile_state(stack, profile_id)
    assert after["status"] == "subscribed"
    assert after["version"] == before["version"] + 1
    assert after["consent_version"] == "2026-01"
    subscribed = sorted(topic for topic, on in after["preferences"]["topics"].items() if on)
    assert subscribed == ["events", "news"], "exactly what was confirmed; nothing never confirmed"
    [consent] = [entry for entry in ledger_after if entry not in ledger_before]
    assert consent["kind"] == "consent_given"
    assert consent["source"] == "confirmation-link"
    assert consent["consent_version"] == "2026-01"
    assert consent["topics"] == ["events", "news"]
    assert evidence_matches(consent["detail"], "127.0.0.1", "Other browser/1.0"), "who confirmed"
    request = {key.removeprefix("request_"): value for key, value in consent["detail"].items()}
    assert evidence_matches(request, "127.0.0.1", UA), "who asked"
    assert consent["detail"]["consent_requested"] == "2026-01"

    _html, again = confirm_with(stack, link)
    assert again.status_code == 303, "confirming twice changes nothing"
    assert profile_state(stack, profile_id) == (after, ledger_after)


def test_a_newer_request_replaces_the_older_link_and_an_old_request_expires(stack, clock):
    profile_id = not_subscribed_profile(stack, "kunde@example.com")
    subscribe(stack, address="kunde@example.com", topics=("news",))
    clock.advance(minutes=11)
    subscribe(stack, address="kunde@example.com", topics=("offers",))
    first, second = (link_in(message, "/confirm") for message in messages(stack))
    assert stack.client.get(first).status_code == 400, "the older link confirms nothing any more"
    assert stack.client.get(second).status_code == 200
    clock.advance(hours=48)
    assert stack.client.get(second).status_code == 400, "a request kept aside expires with its link"
    assert profile_state(stack, profile_id)[0]["status"] == "not_subscribed"


def test_a_subscriber_subscribing_again_gets_no_email_and_nothing_changes(stack, anna):
    before = profile_state(stack, anna["profile_id"])
    subscribe(stack, address="anna.schmidt@example.com", topics=("events",))
    assert messages(stack) == []
    assert profile_state(stack, anna["profile_id"]) == before


# --- an erased, complaining or bounced address ---------------------------------------------------------


def erase_by_the_customer(stack, address):
    entry = next(entry for entry in seed_demo_profiles() if entry["email"] == address)
    stack.client.get(entry["link"].replace("http://127.0.0.1:3000", ""))
    html = stack.client.get("/privacy/delete").get_data(as_text=True)
    assert stack.client.post("/privacy/delete", data={"csrf": csrf_of(html)}).status_code == 200
    stack.client.delete_cookie("ss_session")


def suppression_of(stack, address):
    from selfservice.domain.models import address_hash

    return [item for item in stack.items() if item["pk"]["S"] == f"SUPPRESSED#{address_hash(address)}"]


def new_link_for(stack, address):
    html = stack.client.get("/new-link").get_data(as_text=True)
    assert stack.client.post("/new-link", data={"csrf": csrf_of(html), "email": address}).status_code == 200


def test_a_customer_who_erased_their_profile_can_subscribe_again(stack):
    erase_by_the_customer(stack, "eva.fischer@example.com")
    assert suppression_of(stack, "eva.fischer@example.com")[0]["reason"]["S"] == "erased"

    assert subscribe(stack, address="eva.fischer@example.com", topics=("news",)).status_code == 200
    [confirmation] = messages(stack)
    assert confirmation["To"] == "eva.fischer@example.com", "a new double opt-in is a new consent"
    pending = stack.request("GET", "/api/profiles", query={"email": "eva.fischer@example.com"}).json
    assert pending["status"] == "pending"
    new_link_for(stack, "eva.fischer@example.com")
    assert len(messages(stack)) == 1, "until confirmed, the suppression list still blocks every other email"
    assert suppression_of(stack, "eva.fischer@example.com")

    _html, confirmed = confirm_with(stack, link_in(confirmation, "/confirm"))
    assert confirmed.status_code == 303
    stored = stack.request("GET", f"/api/profiles/{pending['id']}").json
    assert stored["status"] == "subscribed"
    assert suppression_of(stack, "eva.fischer@example.com") == [], "the new consent ends the erasure's block"
    service = wiring(get_settings())
    marketing = EmailRenderer(get_settings().content_dir).render(
        "self_service_link", "de", marketing=True, link="x", valid_days=1, first_name="", recipient="r", company="c"
    )
    profile = service.repository.get(pending["id"])
    assert service.mailer.send(profile, marketing, Source.SYSTEM, unsubscribe_url="https://u.example/x").sent


@pytest.mark.parametrize("reason", ["complaint", "hard_bounce"])
@pytest.mark.parametrize("has_profile", [True, False], ids=["with profile", "without profile"])
def test_a_complained_or_bounced_address_gets_no_email_from_the_forms(stack, reason, has_profile):
    from selfservice.domain.models import address_hash

    if has_profile:
        not_subscribed_profile(stack, "kunde@example.com")
    wiring(get_settings()).repository.suppress(address_hash("kunde@example.com"), reason, dt.datetime.now(dt.UTC))
    assert subscribe(stack, address="kunde@example.com").status_code == 200, "the page answers as always"
    new_link_for(stack, "kunde@example.com")
    assert messages(stack) == []
    assert suppression_of(stack, "kunde@example.com")[0]["reason"]["S"] == reason
