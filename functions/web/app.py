"""Hosted pages for customers: reached from a link in an email, no account or password.

Thin: every route reads the session, parses the form, calls the shared SelfService and renders
a page. GET never changes anything; every change is a POST with a CSRF token.
"""

import datetime as dt
import json
from collections.abc import Callable
from functools import lru_cache
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.shared.cookies import Cookie, SameSite
from aws_lambda_powertools.utilities.typing import LambdaContext
from babel.support import NullTranslations

from selfservice import origin
from selfservice.domain.changes import ProfilePatch
from selfservice.domain.errors import InvalidInput, NotFound, VersionConflict
from selfservice.domain.models import CustomerRequest, LedgerEntry, Profile, Source, SubscriptionStatus
from selfservice.domain.review import completeness
from selfservice.observability import log_unexpected
from selfservice.service import SelfService, build_service, export_document, load_token_secrets
from selfservice.settings import Settings, get_settings
from selfservice.subscriptions import ClientEvidence
from selfservice.tokens import ExpiredToken, InvalidToken, Purpose
from selfservice.web import forms, views
from selfservice.web.render import LANGUAGES, PageRenderer, load_translations
from selfservice.web.session import (
    ANONYMOUS_CSRF_COOKIE,
    SESSION_COOKIE,
    SESSION_LIFETIME,
    Session,
    SessionCodec,
    anonymous_csrf_ok,
    new_anonymous_csrf,
)

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = APIGatewayHttpResolver()
LANGUAGE_COOKIE = "ss_lang"
HTML = "text/html; charset=utf-8"


def settings() -> Settings:
    """This process's settings; without PUBLIC_BASE_URL, links point at the domain of this request."""
    return origin.for_request(get_settings(), app.current_event.request_context.domain_name)


def service() -> SelfService:
    return _service(settings())


@lru_cache(maxsize=2)
def _service(settings: Settings) -> SelfService:
    return build_service(settings)


@lru_cache(maxsize=1)
def renderer() -> PageRenderer:
    return PageRenderer(get_settings().content_dir)


@lru_cache(maxsize=1)
def sessions() -> SessionCodec:
    return SessionCodec(load_token_secrets(get_settings()))


class SignInNeeded(Exception):
    """No valid session: the page offers a new link instead."""


class CsrfRefused(Exception):
    """A POST without the form's CSRF token."""


# --- request helpers ------------------------------------------------------------------------
def cookies() -> dict[str, str]:
    jar: dict[str, str] = {}
    for raw in app.current_event.cookies or []:
        name, _, value = raw.partition("=")
        jar.setdefault(name.strip(), value.strip())
    return jar


def secure_cookies() -> bool:
    return settings().public_base_url.startswith("https://")


def cookie(name: str, value: str, max_age: int | None) -> Cookie:
    return Cookie(
        name=name,
        value=value,
        path="/",
        secure=secure_cookies(),
        http_only=True,
        max_age=max_age,
        same_site=SameSite.LAX_MODE,
    )


def language(profile: Profile | None = None) -> str:
    chosen = cookies().get(LANGUAGE_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    if profile is not None:
        return profile.locale
    accept = app.current_event.headers.get("accept-language") or ""
    for part in accept.split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return service().catalog.default_language


def translator(lang: str) -> Callable[[str], str]:
    """gettext of the page catalog (English is the source language, so it translates to itself)."""
    return _translations(lang).gettext


@lru_cache(maxsize=4)
def _translations(lang: str) -> NullTranslations:
    return load_translations(get_settings().content_dir, lang)


def _session() -> Session:
    session = sessions().read(cookies().get(SESSION_COOKIE))
    if session is None:
        raise SignInNeeded
    return session


def _still_valid(session: Session, profile: Profile) -> None:
    """ "Sign out on all devices" bumped the profile's token version: older sessions end."""
    if profile.token_version != session.token_version:
        raise SignInNeeded


def current_session() -> tuple[Session, Profile]:
    """The signed-in customer and their profile (one GetItem), or SignInNeeded."""
    session = _session()
    try:
        profile = service().get(session.profile_id)
    except NotFound:
        raise SignInNeeded from None
    _still_valid(session, profile)
    return session, profile


def current_session_with_records() -> tuple[Session, Profile, list[LedgerEntry], list[CustomerRequest]]:
    """Like :func:`current_session`, plus ledger and requests from the same single Query."""
    session = _session()
    try:
        profile, ledger, found = service().repository.load_all(session.profile_id)
    except NotFound:
        raise SignInNeeded from None
    _still_valid(session, profile)
    return session, profile, ledger, found


def form_data() -> forms.FormData:
    return forms.parse_form(app.current_event.decoded_body)


def checked_form(session: Session) -> forms.FormData:
    form = form_data()
    if not session.accepts(forms.first(form, "csrf")):
        raise CsrfRefused
    return form


# --- responses ------------------------------------------------------------------------------
def page(
    template: str,
    lang: str,
    *,
    session: Session | None = None,
    status: HTTPStatus = HTTPStatus.OK,
    section: str | None = None,
    extra_cookies: list[Cookie] | None = None,
    **context: Any,
) -> Response[str]:
    response_cookies = list(extra_cookies or [])
    if session is not None:
        csrf = session.csrf_token
    else:
        csrf = cookies().get(ANONYMOUS_CSRF_COOKIE) or new_anonymous_csrf()
        if cookies().get(ANONYMOUS_CSRF_COOKIE) != csrf:
            response_cookies.append(cookie(ANONYMOUS_CSRF_COOKIE, csrf, None))
    catalog = service().catalog
    context.setdefault("notice", None)
    context.setdefault("problem", None)
    body = renderer().render(
        template,
        lang,
        csrf=csrf,
        signed_in=session is not None,
        section=section,
        back=back_to(),
        company=get_settings().company_name,
        contact=catalog.contact,
        **context,
    )
    return Response(
        status_code=status.value,
        content_type=HTML,
        body=body,
        headers=renderer().security_headers(),
        cookies=response_cookies,
    )


def back_to() -> str:
    """Where the language switch returns to: this page, with its query (a link's token) on a GET."""
    event = app.current_event
    query = event.raw_query_string if event.http_method == "GET" else ""
    return f"{event.path}?{query}" if query else event.path


def redirect(location: str, extra_cookies: list[Cookie] | None = None) -> Response[str]:
    headers = {**renderer().security_headers(), "Location": location}
    return Response(
        status_code=HTTPStatus.SEE_OTHER.value, content_type=HTML, body="", headers=headers, cookies=extra_cookies or []
    )


def message(
    lang: str,
    title: str,
    paragraphs: list[str],
    *,
    status: HTTPStatus = HTTPStatus.OK,
    offer_new_link: bool = False,
    extra_cookies: list[Cookie] | None = None,
) -> Response[str]:
    return page(
        "message",
        lang,
        status=status,
        title=title,
        paragraphs=paragraphs,
        offer_new_link=offer_new_link,
        extra_cookies=extra_cookies,
    )


def safe_next(target: str | None) -> str:
    """Only paths of this site: never another origin (open-redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --- link exchange and access ---------------------------------------------------------------
@app.get("/link")
def open_link() -> Response[str]:
    token = app.current_event.get_query_string_value("token") or ""
    lang = language()
    _ = translator(lang)
    try:
        profile_id, token_version = service().signer().verify(token, Purpose.MANAGE)
        profile = service().get(profile_id)
        if profile.token_version != token_version:
            raise InvalidToken("revoked")
    except ExpiredToken:
        return message(
            lang,
            _("This link has expired"),
            [_("For your security, links are valid for 30 days.")],
            status=HTTPStatus.BAD_REQUEST,
            offer_new_link=True,
        )
    except (InvalidToken, NotFound):
        return message(
            lang,
            _("This link is not valid"),
            [_("It may be incomplete or no longer valid. You can get a new one right away.")],
            status=HTTPStatus.BAD_REQUEST,
            offer_new_link=True,
        )
    _session, value = sessions().new(profile.id, profile.token_version)
    metrics.add_metric(name="LinkOpened", unit=MetricUnit.Count, value=1)
    session_cookie = cookie(SESSION_COOKIE, value, int(SESSION_LIFETIME.total_seconds()))
    return redirect(safe_next(app.current_event.get_query_string_value("next")), [session_cookie])


@app.exception_handler(SignInNeeded)
def sign_in_needed(_error: SignInNeeded) -> Response[str]:
    lang = language()
    _ = translator(lang)
    return message(
        lang,
        _("Please open your personal link"),
        [_("Your session has ended or this page needs your personal link from one of our emails.")],
        status=HTTPStatus.UNAUTHORIZED,
        offer_new_link=True,
    )


@app.exception_handler(CsrfRefused)
def csrf_refused(_error: CsrfRefused) -> Response[str]:
    lang = language()
    _ = translator(lang)
    return message(
        lang,
        _("This form has expired"),
        [_("Nothing was changed. Please go back, reload the page and try again.")],
        status=HTTPStatus.FORBIDDEN,
    )


@app.get("/new-link")
def new_link_form() -> Response[str]:
    return page("new_link", language(), sent=False, errors={}, form_email="")


@app.post("/new-link")
def new_link() -> Response[str]:
    form = form_data()
    lang = language()
    if not anonymous_csrf_ok(cookies().get(ANONYMOUS_CSRF_COOKIE), forms.first(form, "csrf")):
        raise CsrfRefused
    address = forms.first(form, "email")
    if not address or "@" not in address or len(address) > 254:
        _ = translator(lang)
        return page(
            "new_link",
            lang,
            status=HTTPStatus.UNPROCESSABLE_ENTITY,
            sent=False,
            form_email=address,
            errors={"email": _("Please enter your email address, like name@example.com.")},
        )
    service().request_new_link(address, app.current_event.request_context.http.source_ip)
    return page("new_link", lang, sent=True, errors={}, form_email="")


@app.post("/language")
def switch_language() -> Response[str]:
    form = form_data()
    session = sessions().read(cookies().get(SESSION_COOKIE))
    submitted = forms.first(form, "csrf")
    if not (
        (session and session.accepts(submitted)) or anonymous_csrf_ok(cookies().get(ANONYMOUS_CSRF_COOKIE), submitted)
    ):
        raise CsrfRefused
    chosen = forms.first(form, "lang")
    if chosen not in LANGUAGES:
        chosen = service().catalog.default_language
    back = safe_next(forms.first(form, "back"))
    if back.partition("?")[0] in ("/language", "/sign-out"):
        back = "/"  # pages answering a POST only
    return redirect(back, [cookie(LANGUAGE_COOKIE, chosen, 365 * 24 * 3600)])


@app.post("/sign-out")
def sign_out_everywhere() -> Response[str]:
    session, profile = current_session()
    checked_form(session)
    service().sign_out_everywhere(profile.id, Source.PAGE)
    lang = language(profile)
    _ = translator(lang)
    return message(
        lang,
        _("Signed out on all devices"),
        [_("Every earlier link and session has stopped working. Ask for a new link whenever you need one.")],
        offer_new_link=True,
        extra_cookies=[cookie(SESSION_COOKIE, "", 0)],
    )


# --- subscription lifecycle: double opt-in, opt-down, unsubscribe, RFC 8058 one-click -------------
def client_evidence() -> ClientEvidence:
    return ClientEvidence(
        ip=app.current_event.request_context.http.source_ip,
        user_agent=app.current_event.headers.get("user-agent") or "",
    )


def anonymous_form() -> forms.FormData:
    """A form shown without a session: double-submit CSRF check."""
    form = form_data()
    if not anonymous_csrf_ok(cookies().get(ANONYMOUS_CSRF_COOKIE), forms.first(form, "csrf")):
        raise CsrfRefused
    return form


def invalid_link(lang: str, expired: bool) -> Response[str]:
    _ = translator(lang)
    if expired:
        return message(
            lang,
            _("This link has expired"),
            [_("Please subscribe again; it only takes a moment.")],
            status=HTTPStatus.BAD_REQUEST,
        )
    return message(
        lang,
        _("This link is not valid"),
        [_("It may be incomplete or no longer valid.")],
        status=HTTPStatus.BAD_REQUEST,
    )


def subscribe_page(
    lang: str,
    *,
    status: HTTPStatus = HTTPStatus.OK,
    sent: bool = False,
    errors: dict[str, str] | None = None,
    form: forms.FormData | None = None,
) -> Response[str]:
    catalog = service().catalog
    wording = catalog.current_consent(now().date())
    chosen = set((form or {}).get("topic", []))
    topics = [
        {"id": t.id, "name": t.name.get(lang), "description": t.description.get(lang), "on": t.id in chosen}
        for t in catalog.visible_topics()
    ]
    return page(
        "subscribe",
        lang,
        status=status,
        sent=sent,
        errors=errors or {},
        topics=topics,
        form_email=forms.first(form or {}, "email"),
        consent_text=wording.text.get(lang),
        consent_version=wording.version,
        problem=form_problem(lang) if errors else None,
    )


@app.get("/subscribe")
def subscribe_form() -> Response[str]:
    return subscribe_page(language())


@app.post("/subscribe")
def subscribe() -> Response[str]:
    form = anonymous_form()
    lang = language()
    _ = translator(lang)
    address, topics = forms.first(form, "email"), form.get("topic", [])
    errors = {}
    if not address or "@" not in address or len(address) > 254:
        errors["email"] = _("Please enter your email address, like name@example.com.")
    if not topics:
        errors["topics"] = _("Please choose at least one topic.")
    if not errors:
        try:
            service().subscribe(address, topics, "en" if lang == "en" else "de", Source.PAGE, client_evidence())
        except InvalidInput as error:
            errors["topics" if error.field == "topics" else "email"] = forms.message_of(error, _)
    if errors:
        return subscribe_page(lang, status=HTTPStatus.UNPROCESSABLE_ENTITY, errors=errors, form=form)
    metrics.add_metric(name="SubscribeRequested", unit=MetricUnit.Count, value=1)
    return subscribe_page(lang, sent=True)


@app.get("/confirm")
def confirm_page() -> Response[str]:
    """Shows the confirm button; a mail scanner opening the link confirms nothing."""
    token = app.current_event.get_query_string_value("token") or ""
    try:
        profile = service().pending_profile(token)
    except ExpiredToken:
        return invalid_link(language(), expired=True)
    except InvalidToken:
        return invalid_link(language(), expired=False)
    lang = language(profile)
    catalog = service().catalog
    wording = catalog.current_consent(now().date())
    topics = [
        t.name.get(lang) for topic_id in profile.preferences.subscribed_topics() if (t := catalog.topic(topic_id))
    ]
    return page(
        "confirm",
        lang,
        token=token,
        topics=topics,
        consent_text=wording.text.get(lang),
        consent_version=wording.version,
    )


@app.post("/confirm")
def confirm() -> Response[str]:
    form = anonymous_form()
    try:
        profile = service().confirm_subscription(forms.first(form, "token"), client_evidence())
    except ExpiredToken:
        return invalid_link(language(), expired=True)
    except InvalidToken:
        return invalid_link(language(), expired=False)
    metrics.add_metric(name="Subscribed", unit=MetricUnit.Count, value=1)
    _session, value = sessions().new(profile.id, profile.token_version)
    return redirect("/?welcome=1", [cookie(SESSION_COOKIE, value, int(SESSION_LIFETIME.total_seconds()))])


def unsubscribe_page(token: str) -> Response[str]:
    try:
        profile = service().unsubscribe_target(token)
    except ExpiredToken:
        return invalid_link(language(), expired=False)
    except InvalidToken:
        return invalid_link(language(), expired=False)
    lang = language(profile)
    _ = translator(lang)
    if profile.status != SubscriptionStatus.SUBSCRIBED:
        return message(lang, _("You are unsubscribed"), [_("You do not receive any newsletter from us.")])
    context = views.communication(profile, service().catalog, lang, now())
    return page("unsubscribe", lang, token=token, topics=context["topics"], frequencies=context["frequencies"])


@app.get("/unsubscribe")
def unsubscribe_form() -> Response[str]:
    return unsubscribe_page(app.current_event.get_query_string_value("token") or "")


@app.get("/unsubscribe/one-click")
def one_click_page() -> Response[str]:
    """Mail scanners open links: a GET only shows the page, it never unsubscribes."""
    return unsubscribe_page(app.current_event.get_query_string_value("token") or "")


@app.post("/unsubscribe/one-click")
def one_click() -> Response[str]:
    """RFC 8058: the mail client POSTs ``List-Unsubscribe=One-Click``; no page, cookie or CSRF token."""
    token = app.current_event.get_query_string_value("token") or ""
    form = form_data()
    lang = language()
    _ = translator(lang)
    if forms.first(form, "List-Unsubscribe") != "One-Click":
        return message(
            lang,
            _("This link is not valid"),
            [_("It may be incomplete or no longer valid.")],
            status=HTTPStatus.BAD_REQUEST,
        )
    try:
        profile = service().unsubscribe_target(token)
    except InvalidToken:
        return invalid_link(lang, expired=False)
    if service().unsubscribe(profile.id, Source.ONE_CLICK, "", client_evidence()):
        metrics.add_metric(name="Unsubscribed", unit=MetricUnit.Count, value=1)
    lang = language(profile)
    _ = translator(lang)
    return message(lang, _("You are unsubscribed"), [_("You do not receive any newsletter from us.")])


@app.post("/unsubscribe")
def unsubscribe() -> Response[str]:
    form = anonymous_form()
    token = forms.first(form, "token")
    try:
        profile = service().unsubscribe_target(token)
    except InvalidToken:
        return invalid_link(language(), expired=False)
    lang = language(profile)
    _ = translator(lang)
    reason = forms.first(form, "reason")
    if forms.first(form, "action") == "leave":
        if service().unsubscribe(profile.id, Source.PAGE, reason, client_evidence()):
            metrics.add_metric(name="Unsubscribed", unit=MetricUnit.Count, value=1)
        return message(
            lang,
            _("You are unsubscribed"),
            [
                _("You do not receive any newsletter from us."),
                _("Transactional emails, like links you ask for, still reach you."),
            ],
        )
    patch = forms.opt_down_patch(form, service().catalog, now())
    if patch.preferences is not None and not any((patch.preferences.topics or {}).values()):
        if service().unsubscribe(profile.id, Source.PAGE, reason, client_evidence()):
            metrics.add_metric(name="Unsubscribed", unit=MetricUnit.Count, value=1)
        return message(lang, _("You are unsubscribed"), [_("You do not receive any newsletter from us.")])
    service().opt_down(profile.id, patch, reason, client_evidence())
    metrics.add_metric(name="UnsubscribeSaved", unit=MetricUnit.Count, value=1)
    return message(
        lang,
        _("Thank you for staying"),
        [_("We have saved your choice. You can change it any time in your preferences.")],
    )


# --- pages ----------------------------------------------------------------------------------
def saved_notice(lang: str) -> str | None:
    _ = translator(lang)
    return _("Saved.") if app.current_event.get_query_string_value("saved") == "1" else None


def stale_problem(lang: str) -> str:
    _ = translator(lang)
    return _(
        "Your data was changed elsewhere in the meantime. These are the current values; nothing of yours was saved. "
        "Please make your change again."
    )


def form_problem(lang: str) -> str:
    _ = translator(lang)
    return _("Please correct the marked fields. Nothing was saved yet.")


@app.get("/")
def overview() -> Response[str]:
    try:
        session, profile = current_session()
    except SignInNeeded:
        return page("new_link", language(), sent=False, errors={}, form_email="")
    lang = language(profile)
    _ = translator(lang)
    notice = None
    if app.current_event.get_query_string_value("confirmed") == "1":
        notice = _("Thank you! Your data is confirmed.")
    elif app.current_event.get_query_string_value("welcome") == "1":
        notice = _("Welcome! Your subscription is confirmed.")
    context = views.overview(profile, service().catalog, lang, now(), translator(lang))
    return page("overview", lang, session=session, section="overview", notice=notice or saved_notice(lang), **context)


View = Callable[[Profile, str, "forms.FormData | None"], dict[str, Any]]
PatchBuilder = Callable[[forms.FormData, Profile, str], ProfilePatch]


def edit_page(section: str, view: View) -> Response[str]:
    """GET of an editing page: the stored values, and "Saved." after a successful POST."""
    session, profile = current_session()
    lang = language(profile)
    return page(
        section,
        lang,
        session=session,
        section=section,
        errors={},
        notice=saved_notice(lang),
        **view(profile, lang, None),
    )


def save_edit_page(section: str, view: View, build_patch: PatchBuilder) -> Response[str]:
    """POST of an editing page: save and redirect, or show the form again with what is wrong.

    Wrong values: 422 with each message next to its field and the customer's input kept.
    Stale version: 409 with the current values, so nothing is overwritten silently.
    """
    session, profile = current_session()
    form = checked_form(session)
    lang = language(profile)
    try:
        patch = build_patch(form, profile, lang)
        updated = service().update(profile.id, patch, forms.version_of(form) or -1, Source.PAGE)
    except forms.FormErrors as error:
        return page(
            section,
            lang,
            session=session,
            section=section,
            status=HTTPStatus.UNPROCESSABLE_ENTITY,
            errors=error.errors,
            problem=form_problem(lang),
            **view(profile, lang, form),
        )
    except InvalidInput as error:
        field = error.field.rpartition(".")[2] if error.field.startswith(("fields.", "services.")) else "frequency"
        return page(
            section,
            lang,
            session=session,
            section=section,
            status=HTTPStatus.UNPROCESSABLE_ENTITY,
            errors={field: forms.message_of(error, translator(lang))},
            problem=form_problem(lang),
            **view(profile, lang, form),
        )
    except VersionConflict:
        return page(
            section,
            lang,
            session=session,
            section=section,
            status=HTTPStatus.CONFLICT,
            errors={},
            problem=stale_problem(lang),
            **view(service().get(profile.id), lang, None),
        )
    record_completeness(updated)
    return redirect(f"/{section}?saved=1")


def record_completeness(profile: Profile) -> None:
    """Completeness after every save, so the dashboard shows whether profiles get fuller over time."""
    share = completeness(profile, service().catalog)
    metrics.add_metric(name="ProfileCompleteness", unit=MetricUnit.Percent, value=round(share * 100, 1))


def personal_data_view(profile: Profile, lang: str, form: forms.FormData | None) -> dict[str, Any]:
    focus = (app.current_event.get_query_string_value("focus") or "").split(",")
    return views.personal_data(profile, service().catalog, lang, now(), form=form, focus=focus)


def communication_view(profile: Profile, lang: str, form: forms.FormData | None) -> dict[str, Any]:
    return views.communication(profile, service().catalog, lang, now(), form=form)


def services_view(profile: Profile, lang: str, _form: forms.FormData | None) -> dict[str, Any]:
    return views.services(profile, service().catalog, lang)


@app.get("/profile")
def personal_data() -> Response[str]:
    return edit_page("profile", personal_data_view)


@app.post("/profile")
def save_personal_data() -> Response[str]:
    return save_edit_page(
        "profile",
        personal_data_view,
        lambda form, _profile, lang: forms.personal_data_patch(form, service().catalog, now().date(), translator(lang)),
    )


@app.get("/communication")
def communication() -> Response[str]:
    return edit_page("communication", communication_view)


@app.post("/communication")
def save_communication() -> Response[str]:
    return save_edit_page(
        "communication",
        communication_view,
        lambda form, profile, lang: forms.communication_patch(
            form, profile, service().catalog, now(), translator(lang)
        ),
    )


@app.get("/services")
def services() -> Response[str]:
    return edit_page("services", services_view)


@app.post("/services")
def save_services() -> Response[str]:
    return save_edit_page(
        "services",
        services_view,
        lambda form, _profile, lang: forms.services_patch(form, service().catalog, translator(lang)),
    )


@app.get("/requests")
def requests_page() -> Response[str]:
    session, profile, _ledger, found = current_session_with_records()
    lang = language(profile)
    _ = translator(lang)
    sent = app.current_event.get_query_string_value("sent") == "1"
    notice = _("Thank you! We have received your request.") if sent else None
    return page(
        "requests",
        lang,
        session=session,
        section="requests",
        errors={},
        notice=notice,
        **views.requests(found, translator(lang)),
    )


@app.post("/requests")
def submit_request() -> Response[str]:
    session, profile = current_session()
    form = checked_form(session)
    lang = language(profile)
    try:
        request_type, text = forms.customer_request(form, translator(lang))
    except forms.FormErrors as error:
        found = service().requests(profile.id)
        return page(
            "requests",
            lang,
            session=session,
            section="requests",
            status=HTTPStatus.UNPROCESSABLE_ENTITY,
            errors=error.errors,
            problem=form_problem(lang),
            **views.requests(found, translator(lang), form),
        )
    service().submit_request(profile.id, request_type, text, Source.PAGE)
    metrics.add_metric(name="RequestSubmitted", unit=MetricUnit.Count, value=1)
    return redirect("/requests?sent=1")


@app.get("/history")
def history() -> Response[str]:
    session, profile, ledger, _found = current_session_with_records()
    lang = language(profile)
    return page(
        "history",
        lang,
        session=session,
        section="history",
        **views.history(ledger, service().catalog, lang, translator(lang)),
    )


@app.get("/review")
def review() -> Response[str]:
    session, profile = current_session()
    lang = language(profile)
    return page("review", lang, session=session, section="overview", **views.review(profile, service().catalog, lang))


@app.post("/review")
def confirm_everything() -> Response[str]:
    session, profile = current_session()
    form = checked_form(session)
    lang = language(profile)
    try:
        confirmed = service().confirm_all(profile.id, forms.version_of(form) or -1, Source.PAGE)
    except VersionConflict:
        fresh = service().get(profile.id)
        return page(
            "review",
            lang,
            session=session,
            section="overview",
            status=HTTPStatus.CONFLICT,
            problem=stale_problem(lang),
            **views.review(fresh, service().catalog, lang),
        )
    metrics.add_metric(name="ReviewConfirmed", unit=MetricUnit.Count, value=1)
    record_completeness(confirmed)
    return redirect("/?confirmed=1")


@app.get("/privacy")
def privacy() -> Response[str]:
    session, profile = current_session()
    return page("privacy", language(profile), session=session, section="privacy")


@app.get("/privacy/export")
def export() -> Response[str]:
    _session, profile, ledger, found = current_session_with_records()
    document = export_document(profile, ledger, found, exported_at=now())
    headers = {**renderer().security_headers(), "Content-Disposition": 'attachment; filename="my-data.json"'}
    return Response(
        status_code=200,
        content_type="application/json; charset=utf-8",
        body=json.dumps(document, ensure_ascii=False, indent=2),
        headers=headers,
    )


@app.get("/privacy/delete")
def delete_confirm() -> Response[str]:
    session, profile = current_session()
    return page("delete_confirm", language(profile), session=session, section="privacy")


@app.post("/privacy/delete")
def delete_profile() -> Response[str]:
    session, profile = current_session()
    checked_form(session)
    lang = language(profile)
    service().erase(profile.id)
    metrics.add_metric(name="ProfileErasedByCustomer", unit=MetricUnit.Count, value=1)
    _ = translator(lang)
    return message(
        lang,
        _("Your profile is deleted"),
        [
            _("We have deleted everything we stored about you. You will not receive any newsletter from us again."),
            _("Thank you for having been with us."),
        ],
        extra_cookies=[cookie(SESSION_COOKIE, "", 0)],
    )


@app.not_found
def no_page(_error: Exception) -> Response[str]:
    lang = language()
    _ = translator(lang)
    return message(
        lang, _("Page not found"), [_("Please use the links in our emails or the menu.")], status=HTTPStatus.NOT_FOUND
    )


@app.exception_handler(Exception)
def unexpected(error: Exception) -> Response[str]:
    """Never a stack trace for the customer: log it (without personal data) and apologise."""
    log_unexpected(logger, error, "unexpected error on a page")
    lang = language()
    _ = translator(lang)
    return message(
        lang,
        _("Something went wrong"),
        [_("Please try again in a moment."), _("If it keeps happening, contact us.")],
        status=HTTPStatus.INTERNAL_SERVER_ERROR,
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
