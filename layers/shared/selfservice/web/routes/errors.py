"""What a customer sees when a page cannot be shown: sign in again, an expired or unreadable form, no such
page, our fault."""

from __future__ import annotations

from http import HTTPStatus

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.exceptions import NotFoundError

from selfservice.observability import log_unexpected
from selfservice.web.forms import UnreadableForm
from selfservice.web.pages import CsrfRefused, SignInNeeded, current
from selfservice.web.session import SESSION_COOKIE

router = Router()
logger = Logger(child=True)


@router.exception_handler(SignInNeeded)
def sign_in_needed(_error: SignInNeeded) -> Response[str]:
    r = current(router)
    lang = r.language()
    _ = r.translator(lang)
    return r.message(
        lang,
        _("Please open your personal link"),
        [_("Your session has ended or this page needs your personal link from one of our emails.")],
        status=HTTPStatus.UNAUTHORIZED,
        offer_new_link=True,
    )


@router.exception_handler(CsrfRefused)
def csrf_refused(_error: CsrfRefused) -> Response[str]:
    r = current(router)
    lang = r.language()
    _ = r.translator(lang)
    return r.message(
        lang,
        _("This form has expired"),
        [_("Nothing was changed. Please go back, reload the page and try again.")],
        status=HTTPStatus.FORBIDDEN,
    )


@router.exception_handler(UnreadableForm)
def unreadable_form(error: UnreadableForm) -> Response[str]:
    """A body no page of ours sends (not UTF-8, too many fields, too large): nothing is read from it."""
    r = current(router)
    lang = r.language()
    _ = r.translator(lang)
    if error.too_large:
        return r.message(
            lang,
            _("This form is too large"),
            [_("Nothing was changed. Please shorten what you entered and try again.")],
            status=HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
        )
    return r.message(
        lang,
        _("This form could not be read"),
        [_("Nothing was changed. Please go back, reload the page and try again.")],
        status=HTTPStatus.BAD_REQUEST,
    )


@router.exception_handler(NotFoundError)
def no_page(_error: NotFoundError) -> Response[str]:
    """No such page: a signed-in customer gets the menu, anyone else the way to the start page.

    The session cookie is only checked, not looked up (no database read for a mistyped address).
    """
    r = current(router)
    lang = r.language()
    _ = r.translator(lang)
    session = r.wiring.sessions.read(r.cookies.get(SESSION_COOKIE))
    if session is not None:
        hint = _("Please choose a section from the menu above, or use the links in our emails.")
    else:
        hint = _("Please use the links in our emails, or go to the start page.")
    return r.page(
        "message",
        lang,
        session=session,
        status=HTTPStatus.NOT_FOUND,
        title=_("Page not found"),
        paragraphs=[_("There is no page at this address."), hint],
        offer_new_link=False,
        home_link=session is None,
    )


@router.exception_handler(Exception)
def unexpected(error: Exception) -> Response[str]:
    """Never a stack trace for the customer: log it (without personal data) and apologise."""
    log_unexpected(logger, error, "unexpected error on a page")
    r = current(router)
    lang = r.language()
    _ = r.translator(lang)
    return r.message(
        lang,
        _("Something went wrong"),
        [_("Please try again in a moment."), _("If it keeps happening, contact us.")],
        status=HTTPStatus.INTERNAL_SERVER_ERROR,
    )
