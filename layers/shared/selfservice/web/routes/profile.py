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
from selfservice.domain.errors import InvalidInput, VersionConflict
from selfservice.domain.models import Profile, Source
from selfservice.domain.review import completeness
from selfservice.usecases import profiles
from selfservice.web import forms, messages, views
from selfservice.web.middleware import signed_in, signed_in_form
from selfservice.web.pages import PageRequest, SignInNeeded, current, now

router = Router()
metrics = Metrics()

View = Callable[[PageRequest, Profile, str, "forms.FormData | None"], dict[str, Any]]
PatchBuilder = Callable[[PageRequest, Profile, str], ProfilePatch]


# Each helper names the translator ``_`` so that `make i18n` finds its text.
def saved_notice(r: PageRequest, lang: str) -> str | None:
    _ = r.translator(lang)
    return _("Saved.") if r.query("saved") == "1" else None


def stale_problem(r: PageRequest, lang: str) -> str:
    _ = r.translator(lang)
    return _(
        "Your data was changed elsewhere in the meantime. These are the current values; nothing of yours was saved. "
        "Please make your change again."
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
    Stale version: 409 with the current values, so nothing is overwritten silently.
    """
    r = current(router)
    session, profile = r.sign_in()
    lang = r.language(profile)
    status, errors, problem = HTTPStatus.UNPROCESSABLE_ENTITY, {}, form_problem(r, lang)
    try:
        patch = build_patch(r, profile, lang)
        updated = profiles.update(r.adapters, profile, patch, forms.version_of(r.form) or -1, Source.PAGE)
    except forms.FormErrors as error:
        errors = error.errors
    except InvalidInput as error:
        errors = {messages.error_key(error.field): forms.message_of(error, r.translator(lang), r.catalog, lang)}
    except VersionConflict:
        fresh = profiles.get(r.adapters, profile.id)
        context = view(r, fresh, lang, None)
        return r.page(
            section,
            lang,
            session=session,
            section=section,
            status=HTTPStatus.CONFLICT,
            errors={},
            problem=stale_problem(r, lang),
            **context,
        )
    else:
        record_completeness(r, updated)
        return r.redirect(f"/{section}?saved=1")
    context = view(r, profile, lang, r.form)
    return r.page(
        section, lang, session=session, section=section, status=status, errors=errors, problem=problem, **context
    )


def personal_data_view(r: PageRequest, profile: Profile, lang: str, form: forms.FormData | None) -> dict[str, Any]:
    focus = r.query("focus").split(",")
    return views.personal_data(profile, r.catalog, lang, now(), form=form, focus=focus)


def communication_view(r: PageRequest, profile: Profile, lang: str, form: forms.FormData | None) -> dict[str, Any]:
    return views.communication(profile, r.catalog, lang, now(), form=form)


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
