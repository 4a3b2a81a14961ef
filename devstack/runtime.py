"""The local runtime: the template's real handlers in-process, as Lambda runs them. Every invocation (Step
Functions tasks, the Lambda API, EventBridge targets) reaches :meth:`LambdaRuntime.invoke` through moto's
Lambda backend; a handler exception becomes an *unhandled function error* (``Retry``/``Catch`` work as on
AWS). :meth:`LambdaRuntime.deliver` delivers what moto's EventBridge cannot, :meth:`LambdaRuntime.pump`
runs the template's pipes. :class:`HttpGateway` stands in for API Gateway's HTTP API (payload format 2.0)."""

import base64
import contextlib
import decimal
import functools
import importlib.util
import json
import logging
import os
import re
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from types import ModuleType, SimpleNamespace
from typing import Any, NamedTuple

from jsonpath_ng.ext import parse
from moto.dynamodb.models import dynamodb_backends
from moto.events.models import EventPattern, events_backends
from moto.sqs.models import sqs_backends
from moto.stepfunctions.responses import get_backend
from werkzeug.datastructures import Headers
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, MapAdapter, Rule
from werkzeug.wrappers import Request, Response

from devstack.cfn import ACCOUNT_ID
from devstack.provision import FunctionSpec, HttpRoute, StackResources
from devstack.webhooks import WebhookCaller

LOG = logging.getLogger(__name__)


class HandlerUnavailable(Exception):  # the handler file is missing or cannot be imported (not a bug)
    pass


class InvocationResult(NamedTuple):  # a Lambda response: the JSON payload and, for a function error, its kind
    payload: bytes
    function_error: str | None = None


def _set_environ(values: Mapping[str, str | None]) -> None:
    for key, value in values.items():
        os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)


class EnvironmentScope:
    """A function's environment around each call: what every function shares is set once for the process,
    a function's own differing variables per call, under a lock (functions without them run concurrently)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._common: dict[str, str] = {}
        self._saved: dict[str, str | None] = {}

    def install_common(self, common: Mapping[str, str], removed: tuple[str, ...] = ()) -> None:
        """Set the shared variables (and unset ``removed``) for the whole process."""
        for key in [*common, *removed]:
            self._saved.setdefault(key, os.environ.get(key))
        _set_environ({**dict.fromkeys(removed), **common})
        self._common = dict(common)

    def restore(self) -> None:
        _set_environ(self._saved)
        self._saved, self._common = {}, {}

    @contextlib.contextmanager
    def applied(self, environment: Mapping[str, str]) -> Iterator[None]:
        changes: dict[str, str | None] = {k: v for k, v in environment.items() if self._common.get(k) != v}
        changes |= {key: None for key in self._common if key not in environment}
        with self._lock if changes else contextlib.nullcontext():
            saved = {key: os.environ.get(key) for key in changes}
            try:
                _set_environ(changes)
                yield
            finally:
                _set_environ(saved)


def send_to_queue(queue_arn: str, body: str) -> None:
    """Send to an SQS queue through moto's backend (works from any thread)."""
    _, _, _, region, account, name = queue_arn.split(":", 5)
    sqs_backends[account][region].send_message(queue_name=name, message_body=body)


def _json_default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


class LambdaRuntime:
    """Loads and invokes the handlers named in the template."""

    def __init__(self, resources: StackResources, env_scope: EnvironmentScope | None = None):
        self.resources, self.env = resources, env_scope or EnvironmentScope()
        self._modules: dict[str, ModuleType] = {}
        self._import_lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="devstack-async")
        self._pending: set[Future[None]] = set()
        self.webhooks = WebhookCaller()  # API destinations (the console shows what they got)
        self._pipes = threading.Lock()  # where each pipe is in its stream (it starts now)
        self._positions = {name: len((shard := _shard(pipe["Source"])).items) + shard.starting_sequence_number
                           for name, pipe in resources.pipes.items()}  # fmt: skip

    def call(self, spec: FunctionSpec, event: Any) -> Any:
        """Call the handler (imported once, under the function's environment); exceptions propagate."""
        with self._import_lock:
            if spec.logical_id not in self._modules:
                self._modules[spec.logical_id] = self._import(spec)
        if not callable(handler := getattr(self._modules[spec.logical_id], spec.handler_attribute, None)):
            raise HandlerUnavailable(f"{spec.logical_id}: {spec.handler_file.name} has no {spec.handler_attribute!r}")
        deadline = time.monotonic() + spec.timeout_s  # (not enforced locally)
        context = SimpleNamespace(  # what handlers and Powertools read of Lambda's context object
            function_name=spec.name, invoked_function_arn=spec.arn, memory_limit_in_mb=spec.memory_mb,
            function_version="$LATEST", aws_request_id=str(uuid.uuid4()), log_group_name=f"/aws/lambda/{spec.name}",
            log_stream_name="local", identity=None, client_context=None,
            get_remaining_time_in_millis=lambda: max(0, int((deadline - time.monotonic()) * 1000)),
        )  # fmt: skip
        with self.env.applied(spec.environment):
            return handler(event, context)

    def _import(self, spec: FunctionSpec) -> ModuleType:
        name = f"_devstack_handlers.{spec.logical_id}.{spec.handler.rsplit('.', 1)[0]}"
        module_spec = importlib.util.spec_from_file_location(name, spec.handler_file)
        if not spec.handler_file.is_file() or module_spec is None or module_spec.loader is None:
            raise HandlerUnavailable(f"{spec.logical_id}: handler file {spec.handler} not found")
        module = sys.modules[name] = importlib.util.module_from_spec(module_spec)
        try:
            with self.env.applied(spec.environment):
                module_spec.loader.exec_module(module)
        except Exception as error:
            sys.modules.pop(name, None)
            LOG.exception("%s: importing the handler failed", spec.logical_id)
            raise HandlerUnavailable(f"{spec.logical_id}: importing the handler failed: {error!r}") from error
        return module

    def invoke(self, spec: FunctionSpec, payload: bytes | str | None) -> InvocationResult:
        """A synchronous (RequestResponse) invocation with Lambda's error contract."""
        started = time.monotonic()
        try:
            event = json.loads(payload) if payload else {}
        except ValueError:
            return self._error("Runtime.InvalidPayload", "payload is not valid JSON")
        try:
            result = self.call(spec, event)
        except HandlerUnavailable as error:
            LOG.error("%s", error)
            return self._error("Runtime.ImportModuleError", str(error))
        except Exception as error:  # where it failed, without the message (it may carry customer data)
            frames = "".join(traceback.format_tb(error.__traceback__)).rstrip()
            LOG.warning("%s raised %s (%d ms)\n%s", spec.logical_id, type(error).__name__, _ms(started), frames)
            return self._error(type(error).__name__, str(error), traceback.format_exception(error))
        try:
            body = json.dumps(result, default=_json_default).encode("utf-8")
        except (TypeError, ValueError) as error:
            return self._error("Runtime.MarshalError", f"Unable to marshal response: {error}")
        LOG.info("%s invoked (%d ms)", spec.logical_id, _ms(started))
        return InvocationResult(body)

    @staticmethod
    def _error(error_type: str, message: str, stack: list[str] | None = None) -> InvocationResult:
        body = {"errorMessage": message, "errorType": error_type, "stackTrace": stack or []}
        return InvocationResult(json.dumps(body).encode("utf-8"), function_error="Unhandled")

    def invoke_async(self, spec: FunctionSpec, payload: bytes | str) -> Future[None]:
        """An asynchronous (Event) invocation: retried, then sent to the function's dead-letter queue."""
        future = self._executor.submit(self._run_async, spec, payload)
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)
        return future

    def _run_async(self, spec: FunctionSpec, payload: bytes | str) -> None:
        for _attempt in range(spec.max_async_retries + 1):
            if self.invoke(spec, payload).function_error is None:
                return
        LOG.warning("%s: asynchronous invocation failed after %d attempts", spec.logical_id, _attempt + 1)
        if spec.dead_letter_arn:
            send_to_queue(spec.dead_letter_arn, payload.decode() if isinstance(payload, bytes) else payload)

    def deliver(self, rule: str, target: dict[str, Any], event: dict[str, Any]) -> None:
        """An EventBridge delivery moto cannot make (to a state machine, a function, an API destination), with
        the envelope or the target's input; a failed one goes to the target's dead-letter queue."""
        envelope = {key: event[key] for key in ENVELOPE if key in event}
        if re.fullmatch(r"\d+(\.\d+)?", str(when := envelope.get("time"))):  # (moto keeps epoch seconds)
            envelope["time"] = datetime.fromtimestamp(float(str(when)), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        arn, payload = str(target["Arn"]), transform_input(target, envelope)
        try:
            if arn.split(":")[2] == "states":
                start_execution(arn, payload)
            elif ":api-destination/" in arn:
                self.webhooks.call(arn, payload)
            elif spec := self.resources.function_by_name(arn):
                self.invoke_async(spec, payload)
            else:
                raise LookupError("the function is not part of the template")
            LOG.info("rule %s delivered to %s", rule, arn.rsplit(":", 1)[-1])
        except Exception as error:
            LOG.warning("rule %s: delivery to %s failed: %s", rule, arn.rsplit(":", 1)[-1], error)
            if dead_letter := (target.get("DeadLetterConfig") or {}).get("Arn"):
                send_to_queue(str(dead_letter), payload)

    def pump(self) -> int:
        """Run the template's pipes once over their DynamoDB streams; returns how many records they got past.
        A failed batch is tried again at the next pump (locally without end: no dead-letter queue)."""
        moved = 0
        with self._pipes:
            for name, pipe in self.resources.pipes.items():
                stream = (pipe.get("SourceParameters") or {}).get("DynamoDBStreamParameters") or {}
                records = _shard(pipe["Source"]).get(self._positions[name], stream.get("BatchSize", 100))
                if not (records := json.loads(json.dumps(records, default=lambda at: int(at.timestamp())))):
                    continue  # (as the stream API gives them: times in epoch seconds)
                try:
                    self._through_pipe(pipe, records)
                except Exception as error:
                    LOG.warning("pipe %s: batch failed, tried again at the next pump: %s", name, error)
                    continue
                self._positions[name], moved = int(records[-1]["dynamodb"]["SequenceNumber"]) + 1, moved + len(records)
        return moved

    def _through_pipe(self, pipe: dict[str, Any], records: list[Any]) -> None:
        """Filter criteria, a Lambda enrichment, an event bus target with its input template and dynamic paths."""
        patterns = [EventPattern.load(f["Pattern"]) for f in
                    ((pipe.get("SourceParameters") or {}).get("FilterCriteria") or {}).get("Filters", [])]  # fmt: skip
        if not (batch := [r for r in records if not patterns or any(p.matches_event(r) for p in patterns)]):
            return
        if (spec := self.resources.function_by_name(pipe.get("Enrichment", "-"))) and (
                result := self.invoke(spec, json.dumps(batch))).function_error:  # fmt: skip
            raise RuntimeError(f"the enrichment failed: {result.payload[:200]!r}")
        batch, target = json.loads(result.payload) if spec else batch, pipe.get("TargetParameters") or {}
        bus, template = target["EventBridgeEventBusParameters"], target.get("InputTemplate")
        path = lambda item, value: _json_path(item, value) if value[:2] == "$." else value  # noqa: E731
        entries = [{"EventBusName": pipe["Target"], "Source": path(item, bus["Source"]), "DetailType": path(item,
                    bus["DetailType"]), "Detail": transform_input({"InputTransformer": {"InputTemplate": template}}
                    if template else {}, item)} for item in batch]  # fmt: skip
        _, _, _, region, account, _ = pipe["Target"].split(":")
        for at in range(0, len(entries), 10):  # (PutEvents takes 10 entries)
            answers = events_backends[account][region].put_events(entries[at : at + 10])
            if refused := [answer["ErrorCode"] for answer in answers if answer.get("ErrorCode")]:
                raise RuntimeError(f"the bus refused {len(refused)} entries ({refused[0]})")

    def drain(self, timeout: float = 30.0) -> None:
        """Wait for the asynchronous invocations, and until the pipes have nothing left to move."""
        deadline = time.monotonic() + timeout
        while (pending := list(self._pending)) or self.pump():
            for future in pending:
                future.result(timeout=max(0.0, deadline - time.monotonic()))

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


# --- EventBridge deliveries to state machines and functions -----------------------------------------------

ENVELOPE = ("version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail")


def _shard(stream_arn: str) -> Any:
    """moto's shard of a table's stream (``arn:...:table/<name>/stream/<label>``)."""
    _, _, _, region, account, resource = stream_arn.split(":", 5)
    return dynamodb_backends[account][region].get_table(resource.split("/")[1]).stream_shard


def _json_path(document: Any, path: str) -> Any:
    matches = parse(path).find(document)
    return matches[0].value if matches else None


def transform_input(target: dict[str, Any], event: dict[str, Any]) -> str:
    """The payload a target receives, as a JSON document string (its Input, InputPath or InputTransformer)."""
    if target.get("Input") is not None:
        return target["Input"] if isinstance(target["Input"], str) else json.dumps(target["Input"])
    if target.get("InputPath"):
        return json.dumps(_json_path(event, str(target["InputPath"])))
    if not (transformer := target.get("InputTransformer")):
        return json.dumps(event)
    values = {name: _json_path(event, str(path)) for name, path in (transformer.get("InputPathsMap") or {}).items()}
    values |= {"aws.events.event": event, "aws.events.event.json": event}
    values["aws.events.rule-arn"] = (event.get("resources") or [None])[0]

    def fill(match: re.Match[str]) -> str:  # (a pipe's template names JSON paths: <$.detail>)
        if match.group(1) not in values and not match.group(1).startswith("$"):
            return match.group(0)
        value = _json_path(event, match.group(1)) if match.group(1).startswith("$") else values[match.group(1)]
        if len(re.findall(r'(?<!\\)"', match.string[: match.start()])) % 2:  # inside a string: the raw text
            return json.dumps(value if isinstance(value, str) else json.dumps(value))[1:-1]
        return json.dumps(value)

    rendered = re.sub(r"<(\$?[A-Za-z0-9_.\-\[\]*]+)>", fill, str(transformer.get("InputTemplate", "")))
    try:
        json.loads(rendered)
    except ValueError:
        return json.dumps(rendered)  # a plain-text template: the target receives a string
    return rendered


def start_execution(state_machine_arn: str, payload: str) -> str:
    """``StartExecution`` on moto's backend (in server and in-process mode, from any thread)."""
    _, _, _, region, account, *_ = state_machine_arn.split(":")
    execution = get_backend(account, region).start_execution(state_machine_arn, str(uuid.uuid4()), payload)
    return str(execution.execution_arn)


# --- API Gateway HTTP API ---------------------------------------------------------------------------------

TEXT_CONTENT_TYPES = ("text/", "application/json", "application/xml", "application/javascript")  # others: base64


class RouteMatch(NamedTuple):
    route: HttpRoute
    path_parameters: dict[str, str]


@functools.cache
def _routing(routes: tuple[HttpRoute, ...]) -> MapAdapter:
    """werkzeug's routing, which orders routes as API Gateway does: exact paths, then path variables, then
    greedy ones (``{proxy+}``); a method before ``ANY``."""
    rules = [Rule(re.sub(r"\{(\w+)\+\}", r"<path:\1>", re.sub(r"\{(\w+)\}", r"<\1>", route.path)), endpoint=route,
                  methods=None if route.method == "ANY" else [route.method])
             for route in routes if route.path != "$default"]  # fmt: skip
    return Map(rules, strict_slashes=False, merge_slashes=False).bind("local")


def match_route(routes: Iterable[HttpRoute], method: str, path: str) -> RouteMatch | None:
    """The most specific route for ``method path``, else ``$default``, else ``None``."""
    routes = tuple(routes)
    try:
        route, parameters = _routing(routes).match(path, method)
        return RouteMatch(route, dict(parameters))
    except HTTPException:
        default = [route for route in routes if route.path == "$default"]
        return RouteMatch(default[0], {}) if default else None


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
                                         "callerId": "AIDALOCALDEVSTACK", "userId": "AIDALOCALDEVSTACK",
                                         "cognitoIdentity": None, "principalOrgId": None}}  # fmt: skip
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
    """WSGI application: ``extra_apps`` (path prefix -> app: the console), then the template's routes. A
    function serves one request at a time, as one Lambda environment does (its module state is not per thread)."""

    def __init__(self, runtime: LambdaRuntime, *, extra_apps: dict[str, Callable[[Request], Response]] | None = None):
        self.runtime, self.extra_apps = runtime, extra_apps or {}
        self._serving = {logical_id: threading.Lock() for logical_id in runtime.resources.functions}

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
        with self._serving[spec.logical_id]:
            result = self.runtime.invoke(spec, json.dumps(build_event(request, match)))
        elapsed = _ms(started)
        if result.function_error:
            error = json.loads(result.payload)
            if error.get("errorType") == "Runtime.ImportModuleError":
                LOG.error("%s -> 502 (handler unavailable)", route)
                return json_error(502, "Bad Gateway", detail=str(error.get("errorMessage", "")))
            LOG.warning("%s -> 500 (%s, %d ms)", route, error.get("errorType"), elapsed)
            return json_error(500, "Internal Server Error")
        try:
            response = build_response(json.loads(result.payload) if result.payload else None)
        except (TypeError, ValueError) as error:
            LOG.error("%s -> 500 (malformed handler response: %s)", route, error)
            return json_error(500, "Internal Server Error")
        LOG.info("%s -> %d (%d ms)", route, response.status_code, elapsed)
        return response
