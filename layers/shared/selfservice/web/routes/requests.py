"""Requests to customer service: submit one, see its status."""

from __future__ import annotations

from http import HTTPStatus

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.metrics import MetricUnit

from selfservice.domain.models import Source
from selfservice.usecases import profiles, requests
from selfservice.web import forms, views
from selfservice.web.middleware import signed_in_form
from selfservice.web.pages import current

router = Router()
metrics = Metrics()


@router.get("/requests")
def requests_page() -> Response[str]:
    r = current(router)
    session, (profile, _ledger, found) = r.sign_in_with_records()
    lang = r.language(profile)
    _ = r.translator(lang)
    notice = _("Thank you! We have received your request.") if r.query("sent") == "1" else None
    context = views.requests(found, r.catalog, lang, _)
    return r.page("requests", lang, session=session, section="requests", errors={}, notice=notice, **context)


@router.post("/requests", middlewares=[signed_in_form])
def submit_request() -> Response[str]:
    r = current(router)
    session, profile = r.sign_in()
    switched = r.switched_language()
    if switched is not None:
        profile = profiles.set_language(r.adapters, profile, switched, Source.PAGE)
    lang = r.language(profile) if switched is None else switched
    _ = r.translator(lang)
    try:
        request_type, text = forms.customer_request(r.form, _)
    except forms.FormErrors as error:
        errors = error.errors
    else:
        errors = {}
    if errors or switched:
        # Shown again with what was typed: errors to correct, or the page in the language just chosen.
        context = views.requests(requests.requests_of(r.adapters, profile.id), r.catalog, lang, _, r.form)
        return r.page(
            "requests",
            lang,
            session=session,
            section="requests",
            status=HTTPStatus.UNPROCESSABLE_ENTITY if errors and not switched else HTTPStatus.OK,
            errors=errors,
            problem=_("Please correct the marked fields. Nothing was saved yet.") if errors else None,
            extra_cookies=[r.language_cookie(lang)] if switched else None,
            **context,
        )
    requests.submit_request(r.adapters, profile, request_type, text, Source.PAGE)
    metrics.add_metric(name="RequestSubmitted", unit=MetricUnit.Count, value=1)
    return r.redirect("/requests?sent=1")
