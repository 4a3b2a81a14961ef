"""JSON API for the shop and customer service (behind IAM on API Gateway).

Thin: the routes are Powertools routers in ``selfservice.api_routes`` (profiles, requests); each
parses and validates its request (pydantic, the OpenAPI document), calls one use case and maps the
result. Domain errors become problem responses in ``selfservice.api_errors``; a body the API
cannot read is refused before routing (``selfservice.api_request``). Every operation declares
each status it can answer.
"""

import json
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from selfservice.api_errors import RequestRefused, documented, json_response, with_security_headers
from selfservice.api_errors import router as errors
from selfservice.api_models import openapi_as_answered
from selfservice.api_request import parsed_json, readable
from selfservice.api_routes import ROUTERS
from selfservice.observability import new_tracer
from selfservice.settings import get_settings

logger = Logger()
tracer = new_tracer()
metrics = Metrics()
app = APIGatewayHttpResolver(enable_validation=True, json_body_deserializer=parsed_json)
app.include_router(errors)
for router in ROUTERS:
    app.include_router(router)


@app.get("/api/openapi.json", responses=documented(HTTPStatus.OK, "This document"))
def openapi_document() -> Response[dict[str, Any]]:
    document = json.loads(app.get_openapi_json_schema(title="Self-service center API", version="1.0.0"))
    return json_response(HTTPStatus.OK, openapi_as_answered(document))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Checked before routing: Powertools validates (parses) the body before any middleware runs.
    settings = get_settings()
    limit = settings.max_import_body_bytes if event.get("rawPath") == "/api/imports" else settings.max_body_bytes
    try:
        event = readable(event, limit)
    except RequestRefused as refused:
        return with_security_headers(refused.proxy_response())
    return with_security_headers(app.resolve(event, context))
