"""The pages' resolver: Powertools' HTTP API resolver that also answers HEAD.

HTTP says a HEAD is a GET without the body (link checkers, monitors and mail scanners send one);
Powertools routes by method and would answer 404. A HEAD is therefore resolved as the GET of the
same path, and the body dropped: it runs exactly what a GET runs, and a GET changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.utilities.typing import LambdaContext


class PageResolver(APIGatewayHttpResolver):
    def resolve(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        http = (event.get("requestContext") or {}).get("http") or {}
        if str(http.get("method", "")).upper() != "HEAD":
            return super().resolve(event, context)
        as_get = {**event, "requestContext": {**event["requestContext"], "http": {**http, "method": "GET"}}}
        return {**super().resolve(as_get, context), "body": "", "isBase64Encoded": False}
