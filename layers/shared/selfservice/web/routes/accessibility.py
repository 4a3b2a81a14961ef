"""The accessibility statement (BFSG / European Accessibility Act), linked from every page's footer,
and its feedback form, which sends a request of type ``accessibility`` to customer service."""

from __future__ import annotations

from http import HTTPStatus

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.metrics import MetricUnit

from selfservice.accessibility import load_results
from selfservice.domain.models import Profile
from selfservice.usecases import limits, requests
from selfservice.web import forms, views
from selfservice.web.middleware import any_form
from selfservice.web.pages import PageRequest, SignInNeeded, current
from selfservice.web.session import SESSION_COOKIE, Session

router = Router()
metrics = Metrics()


def _signed_in(r: PageRequest) -> tuple[Session | None, Profile | None]:
    """The signed-in customer, if any: the statement is for everyone, with or without a session."""
    if r.wiring.sessions.read(r.cookies.get(SESSION_COOKIE)) is None:
        return None, None
    try:
        return r.sign_in()
    except SignInNeeded:
        return None, None


def _statement(
    r: PageRequest,
    session: Session | None,
    profile: Profile | None,
    *,
    status: HTTPStatus = HTTPStatus.OK,
    errors: dict[str, str] | None = None,
    notice: str | None = None,
) -> Response[str]:
    lang = r.language(profile)
    _ = r.translator(lang)
    context = views.accessibility(load_results(r.settings.content_dir), r.catalog, lang, _, r.form if errors else None)
    return r.page(
        "accessibility",
        lang,
        session=session,
        status=status,
        errors=errors or {},
        notice=notice,
        problem=_("Please correct the marked fields. Nothing was sent yet.") if errors else None,
        ask_address=profile is None,
        **context,
    )


@router.get("/accessibility")
def statement() -> Response[str]:
    r = current(router)
    session, profile = _signed_in(r)
    notice = None
    if r.query("sent") == "1":
        _ = r.translator(r.language(profile))
        notice = _("Thank you! Your message has gone to our customer service.")
    return _statement(r, session, profile, notice=notice)


@router.post("/accessibility", middlewares=[any_form])
def feedback() -> Response[str]:
    r = current(router)
    session, profile = _signed_in(r)
    _ = r.translator(r.language(profile))
    try:
        message, reply_to = forms.accessibility_feedback(r.form, _, ask_address=profile is None)
    except forms.FormErrors as error:
        return _statement(r, session, profile, status=HTTPStatus.UNPROCESSABLE_ENTITY, errors=error.errors)
    if profile is None and not limits.client_admitted(
        r.adapters, "accessibility", r.event.request_context.http.source_ip
    ):
        metrics.add_metric(name="AddressFormLimited", unit=MetricUnit.Count, value=1)
        too_many = _("You have sent several messages in a short time. Please try again in an hour, or write to us.")
        return _statement(r, session, profile, status=HTTPStatus.TOO_MANY_REQUESTS, errors={"message": too_many})
    requests.submit_feedback(r.adapters, profile, message, reply_to)
    metrics.add_metric(name="AccessibilityFeedback", unit=MetricUnit.Count, value=1)
    return r.redirect("/accessibility?sent=1#feedback-h")
