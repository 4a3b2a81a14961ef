"""The hosted pages, one Powertools Router per section; the web handler includes them all.

They live in the shared package, not beside ``functions/web/app.py``: the handler is imported by
file path in the local stack and the tests, where a sibling package is not on the import path,
and a top-level ``routes`` package would clash between functions in one process.
"""

from __future__ import annotations

from aws_lambda_powertools.event_handler.api_gateway import Router

from selfservice.web.routes import access, accessibility, errors, privacy, profile, requests, subscription

ROUTERS: tuple[Router, ...] = (
    access.router,
    subscription.router,
    profile.router,
    requests.router,
    privacy.router,
    accessibility.router,
    errors.router,
)
