"""A local stand-in for API Gateway HTTP APIs (payload format 2.0).

Requests are matched against the ``HttpApi`` events of the template's functions with
API Gateway's precedence (exact paths before path variables before greedy variables,
a specific method before ``ANY``, ``$default`` last), turned into the 2.0 event the same
handlers receive on AWS, and the handler's result is turned back into an HTTP response.
"""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from werkzeug.datastructures import Headers
from werkzeug.wrappers import Request, Response

from devstack.cfn import ACCOUNT_ID
from devstack.lambdas import LambdaRuntime
from devstack.model import HttpRoute

LOG = logging.getLogger(__name__)

TEXT_CONTENT_TYPES = ("text/", "application/json", "application/xml", "application/javascript")
"""Bodies of these types are passed as text; others (also forms, as on AWS) base64-encoded."""


@dataclass(frozen=True)
class RouteMatch:
    """A route chosen for a request and the values of its path variables."""

    route: HttpRoute
    path_parameters: dict[str, str]


def _match_path(route_path: str, request_path: str) -> dict[str, str] | None:
    route_segments = [segment for segment in route_path.split("/") if segment]
    request_segments = [segment for segment in request_path.split("/") if segment]
    parameters: dict[str, str] = {}
    for index, segment in enumerate(route_segments):
        if segment.startswith("{") and segment.endswith("+}"):
            rest = request_segments[index:]
            if not rest or index != len(route_segments) - 1:
                return None
            parameters[segment[1:-2]] = "/".join(rest)
            return parameters
        if index >= len(request_segments):
            return None
        if segment.startswith("{") and segment.endswith("}"):
            parameters[segment[1:-1]] = request_segments[index]
        elif segment != request_segments[index]:
            return None
    if len(request_segments) != len(route_segments):
        return None
    return parameters


def _specificity(route: HttpRoute) -> tuple[int, int, int, int]:
    segments = [segment for segment in route.path.split("/") if segment]
    greedy = any(segment.endswith("+}") for segment in segments)
    literal = sum(1 for segment in segments if not segment.startswith("{"))
    return (0 if greedy else 1, literal, len(segments), 0 if route.method == "ANY" else 1)


def match_route(routes: Iterable[HttpRoute], method: str, path: str) -> RouteMatch | None:
    """The most specific route for ``method path``, else ``$default``, else ``None``."""
    best: tuple[tuple[int, int, int, int], RouteMatch] | None = None
    default: HttpRoute | None = None
    for route in routes:
        if route.path == "$default":
            default = route
            continue
        if route.method not in ("ANY", method.upper()):
            continue
        parameters = _match_path(route.path, path)
        if parameters is None:
            continue
        rank = _specificity(route)
        if best is None or rank > best[0]:
            best = (rank, RouteMatch(route, parameters))
    if best is not None:
        return best[1]
    return RouteMatch(default, {}) if default is not None else None


def _is_text(content_type: str | None) -> bool:
    if not content_type:
        return True
    lowered = content_type.lower()
    return lowered.startswith(TEXT_CONTENT_TYPES) or "+json" in lowered or "+xml" in lowered


def build_event(
    request: Request,
    match: RouteMatch,
    api_id: str = "local",
    stage: str = "$default",
) -> dict[str, Any]:
    """The API Gateway HTTP API payload format 2.0 event for ``request``."""
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        key = name.lower()
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    cookie_header = headers.pop("cookie", "")
    cookies = [part.strip() for part in cookie_header.split(";") if part.strip()]
    host = headers.get("host", "localhost")
    source_ip = request.remote_addr or "127.0.0.1"
    headers.setdefault("x-forwarded-for", source_ip)
    headers.setdefault("x-forwarded-proto", request.scheme)
    headers.setdefault("x-forwarded-port", host.rpartition(":")[2] if ":" in host else "80")
    now = datetime.now(tz=UTC)
    request_id = str(uuid.uuid4())
    headers.setdefault("x-amzn-trace-id", f"Root=1-{int(now.timestamp()):08x}-{uuid.uuid4().hex[:24]}")
    route = match.route
    http = {
        "method": request.method,
        "path": request.path,
        "protocol": request.environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
        "sourceIp": source_ip,
        "userAgent": headers.get("user-agent", ""),
    }
    request_context: dict[str, Any] = {
        "accountId": ACCOUNT_ID,
        "apiId": api_id,
        "domainName": host,
        "domainPrefix": host.split(".", 1)[0],
        "http": http,
        "requestId": request_id,
        "routeKey": route.route_key,
        "stage": stage,
        "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "timeEpoch": int(now.timestamp() * 1000),
    }
    if route.iam_auth:
        request_context["authorizer"] = {
            "iam": {
                "accessKey": "ASIALOCALDEVSTACK",
                "accountId": ACCOUNT_ID,
                "callerId": "AIDALOCALDEVSTACK",
                "cognitoIdentity": None,
                "principalOrgId": None,
                "userArn": f"arn:aws:iam::{ACCOUNT_ID}:user/local-developer",
                "userId": "AIDALOCALDEVSTACK",
            }
        }
    raw_query = request.query_string.decode("latin-1")
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": request.path,
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": request_context,
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if request.args:
        event["queryStringParameters"] = {key: ",".join(request.args.getlist(key)) for key in request.args}
    if match.path_parameters:
        event["pathParameters"] = dict(match.path_parameters)
    body = request.get_data(cache=True)
    if body:
        if _is_text(request.content_type) and _is_utf8(body):
            event["body"] = body.decode("utf-8")
        else:
            event["body"] = base64.b64encode(body).decode("ascii")
            event["isBase64Encoded"] = True
    return event


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def build_response(result: Any) -> Response:
    """Turn a handler result into a response, following the 2.0 format rules."""
    if not (isinstance(result, dict) and "statusCode" in result):
        text = result if isinstance(result, str) else json.dumps(result)
        return Response(text, status=200, content_type="application/json")
    headers = Headers()
    for name, value in (result.get("headers") or {}).items():
        headers.add(str(name), str(value))
    for name, values in (result.get("multiValueHeaders") or {}).items():
        existing = {str(v) for v in headers.getlist(str(name))}
        for value in values or []:
            if str(value) not in existing:
                headers.add(str(name), str(value))
    for cookie in result.get("cookies") or []:
        headers.add("Set-Cookie", str(cookie))
    raw_body = result.get("body")
    body: bytes
    if raw_body is None:
        body = b""
    elif result.get("isBase64Encoded"):
        body = base64.b64decode(str(raw_body))
    else:
        body = (raw_body if isinstance(raw_body, str) else json.dumps(raw_body)).encode("utf-8")
    response = Response(body, status=int(result["statusCode"]), headers=headers)
    if "content-type" not in {name.lower() for name in headers.keys()}:  # noqa: SIM118 - Headers is a multidict
        del response.headers["Content-Type"]
    return response


def json_error(status: int, message: str) -> Response:
    """An API Gateway-style ``{"message": ...}`` error."""
    return Response(json.dumps({"message": message}), status=status, content_type="application/json")


class HttpGateway:
    """WSGI application: the routes of the template in front of the in-process runtime."""

    def __init__(
        self,
        runtime: LambdaRuntime,
        *,
        api_id: str = "local",
        extra_apps: dict[str, Callable[[Request], Response]] | None = None,
    ):
        self.runtime = runtime
        self.api_id = api_id
        self.extra_apps = extra_apps or {}
        """Path prefix -> app served before routing (the developer console)."""

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        response = self.dispatch(request)
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        """Serve one request."""
        for prefix, app in self.extra_apps.items():
            if request.path == prefix.rstrip("/") or request.path.startswith(prefix):
                return app(request)
        match = match_route(self.runtime.resources.http_routes, request.method, request.path)
        if match is None:
            LOG.info("%s (no route) -> 404", request.method)
            return json_error(404, "Not Found")
        spec = self.runtime.resources.functions[match.route.function]
        started = time.monotonic()
        event = build_event(request, match, api_id=self.api_id)
        result = self.runtime.invoke(spec, json.dumps(event))
        elapsed = int((time.monotonic() - started) * 1000)
        if result.function_error:
            error = result.json() or {}
            if error.get("errorType") == "Runtime.ImportModuleError":
                LOG.error("%s %s -> 502 (handler unavailable)", request.method, match.route.route_key)
                return Response(
                    json.dumps({"message": "Bad Gateway", "detail": error.get("errorMessage", "")}),
                    status=502,
                    content_type="application/json",
                )
            LOG.warning(
                "%s %s -> 500 (%s, %d ms)",
                request.method,
                match.route.route_key,
                error.get("errorType"),
                elapsed,
            )
            return json_error(500, "Internal Server Error")
        try:
            response = build_response(result.json())
        except (TypeError, ValueError) as error:
            LOG.error(
                "%s %s -> 500 (malformed handler response: %s)",
                request.method,
                match.route.route_key,
                error,
            )
            return json_error(500, "Internal Server Error")
        LOG.info("%s %s -> %d (%d ms)", request.method, match.route.route_key, response.status_code, elapsed)
        return response


__all__ = ["HttpGateway", "RouteMatch", "build_event", "build_response", "match_route"]
