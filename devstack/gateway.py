"""A local stand-in for API Gateway HTTP APIs (payload format 2.0): a request is matched against the
HTTP API's routes with API Gateway's precedence (exact paths before path variables before greedy
ones, a method before ``ANY``, ``$default`` last), turned into the 2.0 event the handlers receive on
AWS, and the handler's result back into a response."""

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
from devstack.provision import HttpRoute
from devstack.runtime import LambdaRuntime

LOG = logging.getLogger(__name__)
TEXT_CONTENT_TYPES = ("text/", "application/json", "application/xml", "application/javascript")
"""Bodies of these types are passed as text; others (also forms, as on AWS) base64-encoded."""
LOCAL_CALLER = "AIDALOCALDEVSTACK"


@dataclass(frozen=True)
class RouteMatch:
    route: HttpRoute
    path_parameters: dict[str, str]


def _match_path(route_path: str, request_path: str) -> dict[str, str] | None:
    route, request = [s for s in route_path.split("/") if s], [s for s in request_path.split("/") if s]
    parameters: dict[str, str] = {}
    for index, segment in enumerate(route):
        if segment.endswith("+}") and index == len(route) - 1 and request[index:]:
            return parameters | {segment[1:-2]: "/".join(request[index:])}
        if index >= len(request) or segment.endswith("+}"):
            return None
        if segment.startswith("{") and segment.endswith("}"):
            parameters[segment[1:-1]] = request[index]
        elif segment != request[index]:
            return None
    return parameters if len(request) == len(route) else None


def _precedence(route: HttpRoute) -> tuple[int, int, int, int]:
    if route.path == "$default":
        return (-1, 0, 0, 0)
    segments = [s for s in route.path.split("/") if s]
    greedy = bool(segments) and segments[-1].endswith("+}")
    return (int(not greedy), sum(not s.startswith("{") for s in segments), len(segments), int(route.method != "ANY"))


def match_route(routes: Iterable[HttpRoute], method: str, path: str) -> RouteMatch | None:
    """The most specific route for ``method path``, else ``$default``, else ``None``."""
    matches = []
    for route in routes:
        if route.path == "$default":
            matches.append(RouteMatch(route, {}))
        elif route.method in ("ANY", method.upper()) and (parameters := _match_path(route.path, path)) is not None:
            matches.append(RouteMatch(route, parameters))
    return max(matches, key=lambda match: _precedence(match.route), default=None)


def _as_text(body: bytes, content_type: str | None) -> str | None:
    """The body as text when its type is text and it is UTF-8 (else it goes base64-encoded)."""
    lowered = (content_type or "text/").lower()
    if lowered.startswith(TEXT_CONTENT_TYPES) or "+json" in lowered or "+xml" in lowered:
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return None


def build_event(request: Request, match: RouteMatch, api_id: str = "local", stage: str = "$default") -> dict[str, Any]:
    """The API Gateway HTTP API payload format 2.0 event for ``request``."""
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        headers[name.lower()] = f"{headers[name.lower()]},{value}" if name.lower() in headers else value
    cookies = [part.strip() for part in headers.pop("cookie", "").split(";") if part.strip()]
    host, source_ip, now = headers.get("host", "localhost"), request.remote_addr or "127.0.0.1", datetime.now(tz=UTC)
    headers.setdefault("x-forwarded-for", source_ip)
    headers.setdefault("x-forwarded-proto", request.scheme)
    headers.setdefault("x-forwarded-port", host.rpartition(":")[2] if ":" in host else "80")
    headers.setdefault("x-amzn-trace-id", f"Root=1-{int(now.timestamp()):08x}-{uuid.uuid4().hex[:24]}")
    http = {"method": request.method, "path": request.path, "protocol": request.environ.get("SERVER_PROTOCOL",
            "HTTP/1.1"), "sourceIp": source_ip, "userAgent": headers.get("user-agent", "")}  # fmt: skip
    context: dict[str, Any] = {"accountId": ACCOUNT_ID, "apiId": api_id, "domainName": host, "http": http,
                               "domainPrefix": host.split(".", 1)[0], "requestId": str(uuid.uuid4()), "stage": stage,
                               "routeKey": match.route.route_key, "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                               "timeEpoch": int(now.timestamp() * 1000)}  # fmt: skip
    if match.route.iam_auth:  # IAM on AWS; locally every request is the local developer's
        user = f"arn:aws:iam::{ACCOUNT_ID}:user/local-developer"
        context["authorizer"] = {"iam": {"accessKey": "ASIALOCALDEVSTACK", "accountId": ACCOUNT_ID, "userArn": user,
                                         "callerId": LOCAL_CALLER, "userId": LOCAL_CALLER, "cognitoIdentity": None,
                                         "principalOrgId": None}}  # fmt: skip
    event: dict[str, Any] = {"version": "2.0", "routeKey": match.route.route_key, "rawPath": request.path,
                             "rawQueryString": request.query_string.decode("latin-1"), "headers": headers,
                             "requestContext": context, "isBase64Encoded": False}  # fmt: skip
    if cookies:
        event["cookies"] = cookies
    if request.args:
        event["queryStringParameters"] = {key: ",".join(request.args.getlist(key)) for key in request.args}
    if match.path_parameters:
        event["pathParameters"] = dict(match.path_parameters)
    if body := request.get_data(cache=True):
        text = _as_text(body, request.content_type)
        event["body"] = text if text is not None else base64.b64encode(body).decode("ascii")
        event["isBase64Encoded"] = text is None
    return event


def build_response(result: Any) -> Response:
    """Turn a handler result into a response, following the 2.0 format rules."""
    if not (isinstance(result, dict) and "statusCode" in result):
        return Response(result if isinstance(result, str) else json.dumps(result), content_type="application/json")
    headers = Headers([(str(name), str(value)) for name, value in (result.get("headers") or {}).items()])
    for name, values in (result.get("multiValueHeaders") or {}).items():
        for value in values or []:
            if str(value) not in headers.getlist(str(name)):
                headers.add(str(name), str(value))
    for cookie in result.get("cookies") or []:
        headers.add("Set-Cookie", str(cookie))
    body = result.get("body")
    if result.get("isBase64Encoded") and body is not None:
        data = base64.b64decode(str(body))
    else:
        data = ("" if body is None else body if isinstance(body, str) else json.dumps(body)).encode("utf-8")
    response = Response(data, status=int(result["statusCode"]), headers=headers)
    if "content-type" not in {name.lower() for name, _ in headers.items()}:
        del response.headers["Content-Type"]
    return response


def json_error(status: int, message: str, **extra: str) -> Response:
    """An API Gateway-style ``{"message": ...}`` error."""
    return Response(json.dumps({"message": message, **extra}), status=status, content_type="application/json")


class HttpGateway:
    """WSGI application: ``extra_apps`` (path prefix -> app: the developer console), then the template's
    routes in front of the in-process runtime."""

    def __init__(self, runtime: LambdaRuntime, *, extra_apps: dict[str, Callable[[Request], Response]] | None = None):
        self.runtime, self.extra_apps = runtime, extra_apps or {}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        return self.dispatch(Request(environ))(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        for prefix, app in self.extra_apps.items():
            if request.path == prefix.rstrip("/") or request.path.startswith(prefix):
                return app(request)
        if (match := match_route(self.runtime.resources.http_routes, request.method, request.path)) is None:
            LOG.info("%s (no route) -> 404", request.method)
            return json_error(404, "Not Found")
        started, route = time.monotonic(), f"{request.method} {match.route.route_key}"
        spec = self.runtime.resources.functions[match.route.function]
        result = self.runtime.invoke(spec, json.dumps(build_event(request, match)))
        elapsed = int((time.monotonic() - started) * 1000)
        if result.function_error:
            error = result.json() or {}
            if error.get("errorType") == "Runtime.ImportModuleError":
                LOG.error("%s -> 502 (handler unavailable)", route)
                return json_error(502, "Bad Gateway", detail=str(error.get("errorMessage", "")))
            LOG.warning("%s -> 500 (%s, %d ms)", route, error.get("errorType"), elapsed)
            return json_error(500, "Internal Server Error")
        try:
            response = build_response(result.json())
        except (TypeError, ValueError) as error:
            LOG.error("%s -> 500 (malformed handler response: %s)", route, error)
            return json_error(500, "Internal Server Error")
        LOG.info("%s -> %d (%d ms)", route, response.status_code, elapsed)
        return response
