"""The customer's profile: overview, personal data, communication, services, "everything is still correct".

An editing page's POST reads the profile once (in :func:`~selfservice.web.middleware.signed_in_form`)
and writes it once (:func:`selfservice.usecases.profiles.update`: one transaction with its ledger entry).
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.metrics import MetricUnit

from selfservice.domain.changes import ProfilePatch
from selfservice.domain.errors import InvalidInput, MissingFields, VersionConflict
from selfservice.domain.models import Language, Profile, Source
from selfservice.domain.review import completeness
from selfservice.domain.sms import sms_state
from selfservice.usecases import profiles, sms, subscription
from selfservice.web import forms, messages, views
from selfservice.web.middleware import signed_in, signed_in_form
from selfservice.web.pages import PageRequest, SignInNeeded, current, now

router = Router()
metrics = Metrics()

View = Callable[[PageRequest, Profile, str, "forms.FormData | None"], dict[str, Any]]
PatchBuilder = Callable[[PageRequest, Profile, str], ProfilePatch]


# Each helper names the translator ``_`` so that `make i18n` finds its text.
def saved_notice(r: PageRequest, lang: str) -> str | None:
    """The notice after a redirect: saved, a confirmation email sent, unsubscribed from everything."""
    _ = r.translator(lang)
    if r.query("confirm_sent") == "1":
        return _(
            "We have sent you an email. Please confirm your subscription with the link in it; "
            "until then nothing changes."
        )
    if r.query("left") == "1":
        return _("You are unsubscribed from every newsletter. You can subscribe again here at any time.")
    if (about_sms := sms_notice(r, lang)) is not None:
        return about_sms
    return _("Saved.") if r.query("saved") == "1" else None


def sms_notice(r: PageRequest, lang: str) -> str | None:
    """What became of the SMS code after a save or a "send a new code" (``?sms=…``)."""
    _ = r.translator(lang)
    outcome = r.query("sms")
    if outcome == sms.CodeOutcome.SENT:
        return _("We have sent you a code by SMS. Please enter it below to start SMS.")
    if outcome == sms.CodeOutcome.LIMITED:
        return _(
            "We cannot send another code to this number right now: too many were asked for. "
            "Please try again in an hour."
        )
    if outcome == sms.CodeOutcome.NOT_SENT:
        return _("We could not send an SMS to this number. Please check it under Personal data.")
    if outcome == "confirmed":
        return _("Thank you! Your mobile number is confirmed; you will now receive the chosen topics by SMS.")
    return None


def not_confirmed_problem(r: PageRequest, lang: str) -> str:
    _ = r.translator(lang)
    return _("Your mobile number is not confirmed yet.")


def code_problem(r: PageRequest, lang: str, refused: sms.CodeRefused) -> str:
    """The sentence next to the code field for a code that did not confirm the number."""
    _ = r.translator(lang)
    if refused.reason == "wrong":
        return _("This code is not right. Please check the SMS and try again (tries left: {count}).").format(
            count=refused.remaining
        )
    if refused.reason == "used_up":
        return _("This code was entered wrongly too often and no longer works. Please ask for a new code.")
    if refused.reason == "expired":
        return _("This code has expired. Please ask for a new code.")
    if refused.reason == "invalid":
        return _("Please enter the 6-digit code from the SMS.")
    if refused.reason == "limited":
        return _("Too many codes were entered. Please wait an hour and try again.")
    return _("There is no code for this number yet. Please ask for a new code.")


def stale_problem(r: PageRequest, lang: str) -> str:
    _ = r.translator(lang)
    return _(
        "Your data was changed elsewhere in the meantime (for example in another window), so nothing was saved yet. "
        "Your entries are still here, next to what is stored now: please check them and save again."
    )


def form_problem(r: PageRequest, lang: str) -> str:
    _ = r.translator(lang)
    return _("Please correct the marked fields. Nothing was saved yet.")


def record_completeness(r: PageRequest, profile: Profile) -> None:
    """Completeness after every save, so the dashboard shows whether profiles get fuller over time."""
    share = completeness(profile, r.catalog).share
    metrics.add_metric(name="ProfileCompleteness", unit=MetricUnit.Percent, value=round(share * 100, 1))


@router.get("/")
def overview() -> Response[str]:
    r = current(router)
    try:
        session, profile = r.sign_in()
    except SignInNeeded:
        return r.page("new_link", r.language(), sent=False, errors={}, form_email="")
    lang = r.language(profile)
    _ = r.translator(lang)
    notice = None
    if r.query("confirmed") == "1":
        notice = _("Thank you! Your data is confirmed.")
    elif r.query("welcome") == "1":
        notice = _("Welcome! Your subscription is confirmed.")
    context = views.overview(profile, r.catalog, lang, now(), _)
    return r.page(
        "overview", lang, session=session, section="overview", notice=notice or saved_notice(r, lang), **context
    )


def edit_page(section: str, view: View) -> Response[str]:
    """GET of an editing page: the stored values, and "Saved." after a successful POST."""
    r = current(router)
    session, profile = r.sign_in()
    lang = r.language(profile)
    return r.page(
        section,
        lang,
        session=session,
        section=section,
        errors={},
        notice=saved_notice(r, lang),
        **view(r, profile, lang, None),
    )


def save_edit_page(section: str, view: View, build_patch: PatchBuilder) -> Response[str]:
    """POST of an editing page: save and redirect, or show the form again with what is wrong.

    Wrong values: 422 with each message next to its field and the customer's input kept.
    Stale version (another tab saved meanwhile): 409 with the customer's input kept, the current
    values next to it and the new version, so nothing is overwritten silently and nothing typed is lost.
    The language switch on the page submits this form too: it shows the form again in the new
    language, with what was typed, and saves nothing but the language.
    """
    r = current(router)
    session, profile = r.sign_in()
    if (switched := r.switched_language()) is not None:
        return show_in_language(r, section, view, build_patch, switched)
    lang = r.language(profile)
    status, errors, problem = HTTPStatus.UNPROCESSABLE_ENTITY, {}, form_problem(r, lang)
    try:
        patch = build_patch(r, profile, lang)
        evidence = r.evidence().as_detail()
        updated = profiles.update(r.adapters, profile, patch, forms.version_of(r.form) or -1, Source.PAGE, evidence)
    except forms.FormErrors as error:
        errors = error.errors
    except InvalidInput as error:
        errors = {messages.error_key(error.field): forms.message_of(error, r.translator(lang), r.catalog, lang)}
    except VersionConflict:
        profile = profiles.get(r.adapters, profile.id)
        status, problem = HTTPStatus.CONFLICT, stale_problem(r, lang)
    else:
        record_completeness(r, updated)
        # SMS chosen for a topic, or a new number: the SMS double opt-in (re)starts with a code.
        outcome = sms.CodeOutcome.NOT_NEEDED
        if sms.newly_wanted(profile, updated):
            outcome = sms.offer_code(r.adapters, updated, Source.PAGE, client_ip=r.client_ip())
        if outcome in (sms.CodeOutcome.SENT, sms.CodeOutcome.LIMITED, sms.CodeOutcome.NOT_SENT):
            return r.redirect(f"/communication?saved=1&sms={outcome.value}#sms")
        return r.redirect(f"/{section}?saved=1")
    context = view(r, profile, lang, r.form)
    conflict = status == HTTPStatus.CONFLICT
    return r.page(
        section,
        lang,
        session=session,
        section=section,
        status=status,
        errors=errors,
        problem=problem,
        conflict=conflict,
        **context,
    )


def show_in_language(
    r: PageRequest, section: str, view: View, build_patch: PatchBuilder, lang: Language
) -> Response[str]:
    """The editing page again in ``lang``, with the customer's input and its errors (if any), unsaved."""
    session, profile = r.sign_in()
    profile = profiles.set_language(r.adapters, profile, lang, Source.PAGE)
    errors: dict[str, str] = {}
    try:
        build_patch(r, profile, lang)
    except forms.FormErrors as error:
        errors = error.errors
    return r.page(
        section,
        lang,
        session=session,
        section=section,
        errors=errors,
        problem=form_problem(r, lang) if errors else None,
        extra_cookies=[r.language_cookie(lang)],
        **view(r, profile, lang, r.form),
    )


def personal_data_view(r: PageRequest, profile: Profile, lang: str, form: forms.FormData | None) -> dict[str, Any]:
    focus = r.query("focus").split(",")
    return views.personal_data(profile, r.catalog, lang, now(), form=form, focus=focus)


def communication_view(r: PageRequest, profile: Profile, lang: str, form: forms.FormData | None) -> dict[str, Any]:
    code = sms.current_code(r.adapters, profile) if sms_state(profile) == "pending" else None
    return views.communication(profile, r.catalog, lang, now(), form=form, sms_code=code)


def services_view(r: PageRequest, profile: Profile, lang: str, _form: forms.FormData | None) -> dict[str, Any]:
    return views.services(profile, r.catalog, lang)


@router.get("/profile", middlewares=[signed_in])
def personal_data() -> Response[str]:
    return edit_page("profile", personal_data_view)


@router.post("/profile", middlewares=[signed_in_form])
def save_personal_data() -> Response[str]:
    return save_edit_page(
        "profile",
        personal_data_view,
        lambda r, _profile, lang: forms.personal_data_patch(r.form, r.catalog, now().date(), r.translator(lang), lang),
    )


@router.get("/communication", middlewares=[signed_in])
def communication() -> Response[str]:
    return edit_page("communication", communication_view)


@router.post("/communication", middlewares=[signed_in_form])
def save_communication() -> Response[str]:
    return save_edit_page(
        "communication",
        communication_view,
        lambda r, profile, lang: forms.communication_patch(r.form, profile, r.catalog, now(), r.translator(lang), lang),
    )


@router.post("/communication/subscribe", middlewares=[signed_in_form])
def subscribe_again() -> Response[str]:
    """Subscribe again, signed in: a double opt-in with the topics ticked; nothing changes until confirmed."""
    r = current(router)
    session, profile = r.sign_in()
    lang = r.language(profile)
    _ = r.translator(lang)
    topics = r.form.get("topic", [])
    try:
        subscription.subscribe_again(r.adapters, profile, topics, r.evidence())
    except InvalidInput:
        context = communication_view(r, profile, lang, r.form)
        errors = {"topics": _("Please choose at least one topic.")}
        return r.page(
            "communication",
            lang,
            session=session,
            section="communication",
            status=HTTPStatus.UNPROCESSABLE_ENTITY,
            errors=errors,
            problem=form_problem(r, lang),
            **context,
        )
    metrics.add_metric(name="SubscribeAgainRequested", unit=MetricUnit.Count, value=1)
    return r.redirect("/communication?confirm_sent=1")


@router.post("/communication/sms/confirm", middlewares=[signed_in_form])
def confirm_sms_number() -> Response[str]:
    """The code from the SMS: the number is confirmed and SMS starts, or the page again with what is wrong."""
    r = current(router)
    session, profile = r.sign_in()
    lang = r.language(profile)
    entry = sms.Entry(code=r.field("sms_code"), evidence=r.evidence().as_detail(), client_ip=r.client_ip())
    status, errors, problem = HTTPStatus.UNPROCESSABLE_ENTITY, {}, form_problem(r, lang)
    try:
        sms.confirm_number(r.adapters, profile, entry)
    except sms.CodeRefused as refused:
        errors = {"sms_code": code_problem(r, lang, refused)}
        problem = not_confirmed_problem(r, lang)
        metrics.add_metric(name="SmsCodeRefused", unit=MetricUnit.Count, value=1)
    except VersionConflict:
        profile = profiles.get(r.adapters, profile.id)
        status, problem = HTTPStatus.CONFLICT, stale_problem(r, lang)
    else:
        metrics.add_metric(name="SmsNumberConfirmed", unit=MetricUnit.Count, value=1)
        return r.redirect("/communication?sms=confirmed")
    return r.page(
        "communication",
        lang,
        session=session,
        section="communication",
        status=status,
        errors=errors,
        problem=problem,
        **communication_view(r, profile, lang, None),
    )


@router.post("/communication/sms/resend", middlewares=[signed_in_form])
def resend_sms_code() -> Response[str]:
    r = current(router)
    _session, profile = r.sign_in()
    outcome = sms.offer_code(r.adapters, profile, Source.PAGE, client_ip=r.client_ip(), again=True)
    return r.redirect(f"/communication?sms={outcome.value}#sms")


@router.post("/communication/resend", middlewares=[signed_in_form])
def resend_confirmation() -> Response[str]:
    r = current(router)
    _session, profile = r.sign_in()
    subscription.resend_confirmation(r.adapters, profile, r.evidence())
    return r.redirect("/communication?confirm_sent=1")


@router.post("/communication/leave", middlewares=[signed_in_form])
def unsubscribe_from_everything() -> Response[str]:
    r = current(router)
    _session, profile = r.sign_in()
    if subscription.leave(r.adapters, profile.id, Source.PAGE, "", r.evidence()) == subscription.Choice.UNSUBSCRIBED:
        metrics.add_metric(name="Unsubscribed", unit=MetricUnit.Count, value=1)
    return r.redirect("/communication?left=1")


@router.get("/services", middlewares=[signed_in])
def services() -> Response[str]:
    return edit_page("services", services_view)


@router.post("/services", middlewares=[signed_in_form])
def save_services() -> Response[str]:
    return save_edit_page(
        "services",
        services_view,
        lambda r, _profile, lang: forms.services_patch(r.form, r.catalog, r.translator(lang), lang),
    )


@router.get("/review", middlewares=[signed_in])
def review() -> Response[str]:
    r = current(router)
    session, profile = r.sign_in()
    lang = r.language(profile)
    return r.page("review", lang, session=session, section="overview", **views.review(profile, r.catalog, lang))


@router.post("/review", middlewares=[signed_in_form])
def confirm_everything() -> Response[str]:
    r = current(router)
    session, profile = r.sign_in()
    lang = r.language(profile)
    try:
        confirmed = profiles.confirm_all(r.adapters, profile, forms.version_of(r.form) or -1, Source.PAGE)
    except MissingFields as missing:
        return r.redirect(f"/profile?focus={','.join(missing.fields)}")
    except VersionConflict:
        fresh = profiles.get(r.adapters, profile.id)
        context = views.review(fresh, r.catalog, lang)
        return r.page(
            "review",
            lang,
            session=session,
            section="overview",
            status=HTTPStatus.CONFLICT,
            problem=stale_problem(r, lang),
            **context,
        )
    metrics.add_metric(name="ReviewConfirmed", unit=MetricUnit.Count, value=1)
    record_completeness(r, confirmed)
    return r.redirect("/?confirmed=1")
