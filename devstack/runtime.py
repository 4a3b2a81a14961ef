"""The local runtime: the template's real handlers in-process, as Lambda runs them.

Every invocation (Step Functions tasks, the Lambda API, EventBridge targets) reaches
:meth:`LambdaRuntime.invoke` through moto's Lambda backend (:mod:`devstack.patches`); it imports
``<CodeUri>/<module>.py`` by file path and calls the handler with the function's environment and a
Lambda-like context. A handler exception becomes an *unhandled function error* (``{"errorType",
"errorMessage"}``), which moto's Step Functions interpreter turns into a task failure named
``errorType``: ``Retry``/``Catch`` work as on AWS. :class:`EventDelivery` delivers what moto's
EventBridge cannot, to state machines and functions.
"""

from __future__ import annotations

import decimal
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
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

from devstack.provision import FunctionSpec, StackResources

LOG = logging.getLogger(__name__)


class HandlerUnavailable(Exception):
    """The handler file is missing or cannot be imported (a configuration problem, not a bug)."""


class LambdaContext:
    """The attributes of Lambda's context object that handlers and Powertools read."""

    function_version, log_stream_name, identity, client_context = "$LATEST", "local", None, None

    def __init__(self, spec: FunctionSpec) -> None:
        self.function_name, self.invoked_function_arn, self.memory_limit_in_mb = spec.name, spec.arn, spec.memory_mb
        self.aws_request_id, self.log_group_name = str(uuid.uuid4()), f"/aws/lambda/{spec.name}"
        self._deadline = time.monotonic() + spec.timeout_s

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the function's timeout (not enforced locally)."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass
class InvocationResult:
    """A Lambda response: the JSON payload and, for a function error, its kind."""

    payload: bytes
    function_error: str | None = None

    def json(self) -> Any:
        return json.loads(self.payload) if self.payload else None


def _set_environ(values: Mapping[str, str | None]) -> None:
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


class EnvironmentScope:
    """A function's environment around each call. The variables every function shares are set once for
    the process; a function's own differing ones are applied per call, under a lock (the environment is
    process-wide): functions without such variables run concurrently."""

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
        """Undo :meth:`install_common`."""
        _set_environ(self._saved)
        self._saved, self._common = {}, {}

    @contextmanager
    def applied(self, environment: Mapping[str, str]) -> Iterator[None]:
        changes: dict[str, str | None] = {k: v for k, v in environment.items() if self._common.get(k) != v}
        changes |= {key: None for key in self._common if key not in environment}
        if not changes:
            yield
            return
        with self._lock:
            saved = {key: os.environ.get(key) for key in changes}
            try:
                _set_environ(changes)
                yield
            finally:
                _set_environ(saved)


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
        self.dead_letter_sender: Callable[[str, str], None] | None = None  # (queue ARN, body) of a failed event

    def call(self, spec: FunctionSpec, event: Any) -> Any:
        """Call the handler (imported once, under the function's environment); exceptions propagate."""
        with self._import_lock:
            if spec.logical_id not in self._modules:
                self._modules[spec.logical_id] = self._import(spec)
        if not callable(handler := getattr(self._modules[spec.logical_id], spec.handler_attribute, None)):
            raise HandlerUnavailable(f"{spec.logical_id}: {spec.handler_file.name} has no {spec.handler_attribute!r}")
        with self.env.applied(spec.environment):
            return handler(event, LambdaContext(spec))

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
        if spec.dead_letter_arn and self.dead_letter_sender is not None:
            self.dead_letter_sender(spec.dead_letter_arn, payload.decode() if isinstance(payload, bytes) else payload)

    def drain(self, timeout: float = 30.0) -> None:
        """Wait until pending asynchronous invocations are done."""
        deadline = time.monotonic() + timeout
        while pending := list(self._pending):
            for future in pending:
                future.result(timeout=max(0.0, deadline - time.monotonic()))

    def shutdown(self) -> None:
        """Stop accepting asynchronous work and wait for what runs."""
        self._executor.shutdown(wait=True, cancel_futures=True)


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


# --- EventBridge deliveries to state machines and functions -----------------------------------------------

ENVELOPE = ("version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def scheduled_event(rule_arn: str, account: str, region: str) -> dict[str, Any]:
    """The envelope EventBridge sends for a scheduled rule."""
    now = _iso(datetime.now(tz=UTC))
    values: tuple[Any, ...] = (
        "0",
        str(uuid.uuid4()),
        "Scheduled Event",
        "aws.events",
        account,
        now,
        region,
        [rule_arn],
        {},
    )
    return dict(zip(ENVELOPE, values, strict=True))


def _json_path(document: Any, path: str) -> Any:
    from jsonpath_ng.ext import parse

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

    def fill(match: re.Match[str]) -> str:
        if match.group(1) not in values:
            return match.group(0)
        value = values[match.group(1)]
        if len(re.findall(r'(?<!\\)"', match.string[: match.start()])) % 2:  # inside a string: the raw text
            return json.dumps(value if isinstance(value, str) else json.dumps(value))[1:-1]
        return json.dumps(value)

    rendered = re.sub(r"<([A-Za-z0-9_.\-]+)>", fill, str(transformer.get("InputTemplate", "")))
    try:
        json.loads(rendered)
    except ValueError:
        return json.dumps(rendered)  # a plain-text template: the target receives a string
    return rendered


def start_execution(state_machine_arn: str, payload: str) -> str:
    """``StartExecution`` on moto's backend (in server and in-process mode, from any thread)."""
    from moto.stepfunctions.responses import get_backend

    parts = state_machine_arn.split(":")
    backend = get_backend(parts[4], parts[3])
    return str(
        backend.start_execution(state_machine_arn, name=str(uuid.uuid4()), execution_input=payload).execution_arn
    )


class EventDelivery:
    """Delivers an event moto matched to a state machine or function target, with the envelope or the
    target's input; a failed delivery goes to the target's dead-letter queue."""

    def __init__(self, runtime: LambdaRuntime, sqs_sender: Callable[[str, str], None] | None = None):
        self.runtime, self.sqs_sender = runtime, sqs_sender

    def deliver(self, rule: str, target: dict[str, Any], event: dict[str, Any]) -> None:
        envelope = {key: event[key] for key in ENVELOPE if key in event}
        when = envelope.get("time")  # (moto keeps epoch seconds)
        if isinstance(when, (int, float)) or re.fullmatch(r"\d+(\.\d+)?", str(when)):
            envelope["time"] = _iso(datetime.fromtimestamp(float(str(when)), tz=UTC))
        arn, payload = str(target["Arn"]), transform_input(target, envelope)
        try:
            if arn.split(":")[2] == "states":
                start_execution(arn, payload)
            elif spec := self.runtime.resources.function_by_name(arn):
                self.runtime.invoke_async(spec, payload)
            else:
                raise LookupError("the function is not part of the template")
            LOG.info("rule %s delivered to %s", rule, arn.rsplit(":", 1)[-1])
        except Exception as error:
            LOG.warning("rule %s: delivery to %s failed: %s", rule, arn.rsplit(":", 1)[-1], error)
            if (dead_letter := (target.get("DeadLetterConfig") or {}).get("Arn")) and self.sqs_sender:
                self.sqs_sender(str(dead_letter), payload)
