"""Subscription lifecycle: double opt-in, opt-down instead of leaving, unsubscribe, RFC 8058 one-click."""

from __future__ import annotations

from http import HTTPStatus

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.metrics import MetricUnit

from selfservice.domain.errors import InvalidInput
from selfservice.domain.models import Language, Profile, Source, SubscriptionStatus
from selfservice.tokens import ExpiredToken, InvalidToken
from selfservice.usecases import address_requests, subscription
from selfservice.usecases.subscription import Choice
from selfservice.web import forms, views
from selfservice.web.middleware import anonymous_form
from selfservice.web.pages import PageRequest, current, now

router = Router()
metrics = Metrics()


def invalid_link(r: PageRequest, lang: str, expired: bool) -> Response[str]:
    _ = r.translator(lang)
    if expired:
        return r.message(
            lang,
            _("This link has expired"),
            [_("Please subscribe again; it only takes a moment.")],
            status=HTTPStatus.BAD_REQUEST,
        )
    return r.message(
        lang,
        _("This link is not valid"),
        [_("It may be incomplete or no longer valid.")],
        status=HTTPStatus.BAD_REQUEST,
    )


def unsubscribed(r: PageRequest, lang: str, *more: str) -> Response[str]:
    _ = r.translator(lang)
    return r.message(lang, _("You are unsubscribed"), [_("You will not receive any more newsletters from us."), *more])


def subscribe_page(
    r: PageRequest,
    lang: str,
    *,
    status: HTTPStatus = HTTPStatus.OK,
    sent: bool = False,
    errors: dict[str, str] | None = None,
    switched: bool = False,
) -> Response[str]:
    wording = r.catalog.current_consent(now().date())
    form = r.form if errors or switched else {}
    _ = r.translator(lang)
    return r.page(
        "subscribe",
        lang,
        status=status,
        sent=sent,
        errors=errors or {},
        topics=views.subscribe_topics(r.catalog, lang, set(form.get("topic", []))),
        form_email=forms.first(form, "email"),
        consent_text=wording.text.get(lang),
        consent_version=wording.version,
        problem=_("Please correct the marked fields. Nothing was saved yet.") if errors else None,
        extra_cookies=[r.language_cookie(lang)] if switched else None,
    )


@router.get("/subscribe")
def subscribe_form() -> Response[str]:
    r = current(router)
    return subscribe_page(r, r.language())


@router.post("/subscribe", middlewares=[anonymous_form])
def subscribe() -> Response[str]:
    r = current(router)
    if (switched := r.switched_language()) is not None:
        return subscribe_page(r, switched, switched=True)
    lang = r.language()
    _ = r.translator(lang)
    topics = r.form.get("topic", [])
    errors, admitted = {}, False
    try:
        address = forms.email_address(r.form, _)
    except forms.FormErrors as error:
        errors.update(error.errors)
    if not topics:
        errors["topics"] = _("Please choose at least one topic.")
    if not errors:
        try:
            locale: Language = "en" if lang == "en" else "de"
            admitted = address_requests.request_subscription(r.adapters, address, topics, locale, r.evidence())
        except InvalidInput as error:
            errors["topics" if error.field == "topics" else "email"] = forms.message_of(error, _)
    if errors:
        return subscribe_page(r, lang, status=HTTPStatus.UNPROCESSABLE_ENTITY, errors=errors)
    metrics.add_metric(name="SubscribeRequested" if admitted else "AddressFormLimited", unit=MetricUnit.Count, value=1)
    return subscribe_page(r, lang, sent=True)


@router.get("/confirm")
def confirm_page() -> Response[str]:
    """Shows the confirm button; a mail scanner opening the link confirms nothing."""
    r = current(router)
    token = r.query("token")
    try:
        found = subscription.confirmation(r.adapters, token)
    except InvalidToken as error:
        return invalid_link(r, r.language(), expired=isinstance(error, ExpiredToken))
    lang = r.language(found.profile)
    wording = r.catalog.current_consent(now().date())
    return r.page(
        "confirm",
        lang,
        token=token,
        topics=views.topic_names(r.catalog, lang, found.topics),
        consent_text=wording.text.get(lang),
        consent_version=wording.version,
    )


@router.post("/confirm", middlewares=[anonymous_form])
def confirm() -> Response[str]:
    r = current(router)
    try:
        profile = subscription.confirm_subscription(r.adapters, r.field("token"), r.evidence())
    except InvalidToken as error:
        return invalid_link(r, r.language(), expired=isinstance(error, ExpiredToken))
    metrics.add_metric(name="Subscribed", unit=MetricUnit.Count, value=1)
    return r.redirect("/?welcome=1", [r.session_cookie(profile)])


def unsubscribe_page(r: PageRequest, token: str) -> Response[str]:
    try:
        profile = subscription.unsubscribe_target(r.adapters, token)
    except InvalidToken:
        return invalid_link(r, r.language(), expired=False)
    lang = r.language(profile)
    if profile.status != SubscriptionStatus.SUBSCRIBED:
        return unsubscribed(r, lang)
    return opt_down_page(r, profile, token, lang)


def opt_down_page(
    r: PageRequest, profile: Profile, token: str, lang: str, errors: dict[str, str] | None = None
) -> Response[str]:
    """The opt-down offer; with ``errors`` again as submitted (422), each message next to its field."""
    context = views.communication(profile, r.catalog, lang, now(), form=r.form if errors else None)
    return r.page(
        "unsubscribe",
        lang,
        status=HTTPStatus.UNPROCESSABLE_ENTITY if errors else HTTPStatus.OK,
        token=token,
        topics=context["topics"],
        frequencies=context["frequencies"],
        errors=errors or {},
        problem=r.translator(lang)("Please correct the marked fields. Nothing was saved yet.") if errors else None,
    )


@router.get("/unsubscribe")
def unsubscribe_form() -> Response[str]:
    r = current(router)
    return unsubscribe_page(r, r.query("token"))


@router.get("/unsubscribe/one-click")
def one_click_page() -> Response[str]:
    """Mail scanners open links: a GET only shows the page, it never unsubscribes."""
    r = current(router)
    return unsubscribe_page(r, r.query("token"))


@router.post("/unsubscribe/one-click")
def one_click() -> Response[str]:
    """RFC 8058: the mail client POSTs ``List-Unsubscribe=One-Click``; no page, cookie or CSRF token."""
    r = current(router)
    if r.field("List-Unsubscribe") != "One-Click":
        return invalid_link(r, r.language(), expired=False)
    try:
        profile = subscription.unsubscribe_target(r.adapters, r.query("token"))
    except InvalidToken:
        return invalid_link(r, r.language(), expired=False)
    if subscription.leave(r.adapters, profile.id, Source.ONE_CLICK, "", r.evidence()) == Choice.UNSUBSCRIBED:
        metrics.add_metric(name="Unsubscribed", unit=MetricUnit.Count, value=1)
    return unsubscribed(r, r.language(profile))


@router.post("/unsubscribe", middlewares=[anonymous_form])
def unsubscribe() -> Response[str]:
    r = current(router)
    try:
        profile = subscription.unsubscribe_target(r.adapters, r.field("token"))
    except InvalidToken:
        return invalid_link(r, r.language(), expired=False)
    lang = r.language(profile)
    _ = r.translator(lang)
    reason, evidence = r.field("reason"), r.evidence()
    if r.field("action") == "leave":
        note = forms.unsubscribe_note(r.form)
        choice = subscription.leave(r.adapters, profile.id, Source.PAGE, reason, evidence, note)
    else:
        try:
            patch = forms.opt_down_patch(r.form, r.catalog, now(), _)
        except forms.FormErrors as error:
            return opt_down_page(r, profile, r.field("token"), lang, error.errors)
        choice = subscription.opt_down_or_leave(r.adapters, profile.id, patch, reason, evidence)
    if choice == Choice.STAYED:
        metrics.add_metric(name="UnsubscribeSaved", unit=MetricUnit.Count, value=1)
        return r.message(
            lang,
            _("Thank you for staying"),
            [_("We have saved your choice. You can change it any time in your preferences.")],
        )
    if choice == Choice.UNSUBSCRIBED:
        metrics.add_metric(name="Unsubscribed", unit=MetricUnit.Count, value=1)
    if r.field("action") == "leave":
        return unsubscribed(r, lang, _("Emails you ask for, such as a new link, will still reach you."))
    return unsubscribed(r, lang)
