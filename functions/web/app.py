"""Hosted pages for customers: reached from a link in an email, no account or password.

Thin: the pages are Powertools routers, one per section, in ``selfservice.web.routes``
(access, subscription, profile, requests, privacy, and the error pages); each route signs the
customer in and checks the form's CSRF token through the middlewares in
``selfservice.web.middleware``, calls one use case of ``selfservice.usecases`` and renders a page.
GET (and HEAD, a GET without the body) never changes anything; every change is a POST with a CSRF token.
"""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from selfservice.observability import new_tracer
from selfservice.web.resolver import PageResolver
from selfservice.web.routes import ROUTERS

logger = Logger()
tracer = new_tracer()
metrics = Metrics()
app = PageResolver()  # answers HEAD as GET without the body
for router in ROUTERS:
    app.include_router(router)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
