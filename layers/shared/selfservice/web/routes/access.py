"""Access: a link exchanged for a session, a new link by email, the language switch, signing out."""

from __future__ import annotations

from http import HTTPStatus

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.metrics import MetricUnit

from selfservice.domain.errors import NotFound
from selfservice.domain.models import Language, Source
from selfservice.tokens import ExpiredToken, InvalidToken
from selfservice.usecases import access, address_requests, profiles
from selfservice.web import forms
from selfservice.web.middleware import anonymous_form, any_form, signed_in_form
from selfservice.web.pages import LANGUAGE_COOKIE, PageRequest, SignInNeeded, current
from selfservice.web.redirects import safe_next
from selfservice.web.render import LANGUAGES
from selfservice.web.session import SESSION_COOKIE

router = Router()
metrics = Metrics()


@router.get("/link")
def open_link() -> Response[str]:
    r = current(router)
    lang = r.language()
    _ = r.translator(lang)
    try:
        profile = access.open_link(r.adapters, r.query("token"))
    except ExpiredToken:
        return r.message(
            lang,
            _("This link has expired"),
            [_("For your security, links are valid for 30 days.")],
            status=HTTPStatus.BAD_REQUEST,
            offer_new_link=True,
        )
    except (InvalidToken, NotFound):
        return r.message(
            lang,
            _("This link is not valid"),
            [_("It may be incomplete or no longer valid. You can get a new one right away.")],
            status=HTTPStatus.BAD_REQUEST,
            offer_new_link=True,
        )
    metrics.add_metric(name="LinkOpened", unit=MetricUnit.Count, value=1)
    return r.redirect(safe_next(r.query("next")), [r.session_cookie(profile)])


@router.get("/new-link")
def new_link_form() -> Response[str]:
    r = current(router)
    return r.page("new_link", r.language(), sent=False, errors={}, form_email="")


@router.post("/new-link", middlewares=[anonymous_form])
def new_link() -> Response[str]:
    r = current(router)
    lang = r.language()
    try:
        address = forms.email_address(r.form, r.translator(lang))
    except forms.FormErrors as error:
        return r.page(
            "new_link",
            lang,
            status=HTTPStatus.UNPROCESSABLE_ENTITY,
            sent=False,
            form_email=r.field("email"),
            errors=error.errors,
        )
    if not address_requests.request_new_link(r.adapters, address, r.event.request_context.http.source_ip):
        metrics.add_metric(name="AddressFormLimited", unit=MetricUnit.Count, value=1)
    return r.page("new_link", lang, sent=True, errors={}, form_email="")


def remember_language(r: PageRequest, language: Language) -> None:
    """Signed in, the choice becomes the profile's language: the pages' and every email's."""
    try:
        _session, profile = r.sign_in()
    except SignInNeeded:
        return
    profiles.set_language(r.adapters, profile, language, Source.PAGE)


@router.post("/language", middlewares=[any_form])
def switch_language() -> Response[str]:
    r = current(router)
    chosen = r.field("lang")
    if chosen not in LANGUAGES:
        chosen = r.catalog.default_language
    remember_language(r, "en" if chosen == "en" else "de")
    return r.redirect(safe_next(r.field("back")), [r.cookie(LANGUAGE_COOKIE, chosen, 365 * 24 * 3600)])


@router.post("/sign-out", middlewares=[signed_in_form])
def sign_out_everywhere() -> Response[str]:
    r = current(router)
    _session, profile = r.sign_in()
    access.sign_out_everywhere(r.adapters, profile, Source.PAGE)
    lang = r.language(profile)
    _ = r.translator(lang)
    return r.message(
        lang,
        _("Signed out on all devices"),
        [_("Every earlier link and session has stopped working. Ask for a new link whenever you need one.")],
        offer_new_link=True,
        extra_cookies=[r.cookie(SESSION_COOKIE, "", 0)],
    )
