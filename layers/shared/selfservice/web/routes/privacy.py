"""Transparency and privacy: the history, what is stored, the download of "my data", deleting the profile."""

from __future__ import annotations

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.metrics import MetricUnit

from selfservice.domain.models import Source
from selfservice.usecases import privacy
from selfservice.web import views
from selfservice.web.middleware import signed_in, signed_in_form
from selfservice.web.pages import current, now
from selfservice.web.session import SESSION_COOKIE

router = Router()
metrics = Metrics()


@router.get("/history")
def history() -> Response[str]:
    r = current(router)
    session, (profile, ledger, _found) = r.sign_in_with_records()
    lang = r.language(profile)
    context = views.history(ledger, r.catalog, lang, r.translator(lang))
    return r.page("history", lang, session=session, section="history", **context)


@router.get("/privacy", middlewares=[signed_in])
def privacy_page() -> Response[str]:
    r = current(router)
    session, profile = r.sign_in()
    return r.page("privacy", r.language(profile), session=session, section="privacy")


@router.get("/privacy/export")
def export() -> Response[str]:
    r = current(router)
    _session, (profile, ledger, found) = r.sign_in_with_records()
    document = privacy.export_document(profile, ledger, found, exported_at=now(), catalog=r.catalog)
    return r.download(document, "my-data.json")


@router.get("/privacy/delete", middlewares=[signed_in])
def delete_confirm() -> Response[str]:
    r = current(router)
    session, profile = r.sign_in()
    return r.page("delete_confirm", r.language(profile), session=session, section="privacy")


@router.post("/privacy/delete", middlewares=[signed_in_form])
def delete_profile() -> Response[str]:
    r = current(router)
    _session, profile = r.sign_in()
    lang = r.language(profile)
    privacy.erase(r.adapters, profile, Source.PAGE)
    metrics.add_metric(name="ProfileErasedByCustomer", unit=MetricUnit.Count, value=1)
    _ = r.translator(lang)
    return r.message(
        lang,
        _("Your profile is deleted"),
        [
            _("We have deleted everything we stored about you. You will not receive any newsletter from us again."),
            _("Thank you for having been with us."),
        ],
        extra_cookies=[r.cookie(SESSION_COOKIE, "", 0)],
    )
