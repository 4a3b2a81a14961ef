"""Powertools middlewares of the pages: who is signed in, and the CSRF check of every form.

Declared per route (``middlewares=[signed_in_form]``), so a route's file says what it requires.
Order as a customer sees it: no session gives the sign-in page (401) before a missing CSRF token
gives the expired-form page (403).
"""

from __future__ import annotations

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware

from selfservice.web.pages import current


def signed_in(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response[str]:
    """The session and its profile (one GetItem), or the sign-in page."""
    current(app).sign_in()
    return next_middleware(app)


def signed_in_form(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response[str]:
    """A POST of a signed-in page: the session, then the form's CSRF token derived from it."""
    current(app).check_session_csrf()
    return next_middleware(app)


def anonymous_form(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response[str]:
    """A POST of a page shown without a session: the double-submit CSRF cookie."""
    current(app).check_anonymous_csrf()
    return next_middleware(app)


def any_form(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response[str]:
    """A POST that every page has (the language switch): either CSRF check."""
    current(app).check_any_csrf()
    return next_middleware(app)
