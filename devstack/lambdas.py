"""Running the template's real handlers in-process, as Lambda would.

moto's ``LambdaSimpleBackend.invoke`` (used with ``{"lambda": {"use_docker": False}}``) is
the one place every Lambda invocation passes through: Step Functions tasks, the Lambda API
and, via :mod:`devstack.events`, EventBridge targets. It is patched to import
``<CodeUri>/<module>.py`` by file path and call the handler with the function's
environment, a Lambda-like context and the JSON payload.

A handler exception becomes an *unhandled function error*: the response carries the
``X-Amz-Function-Error: Unhandled`` header and an ``{"errorType", "errorMessage"}`` body, which
is what moto's Step Functions interpreter turns into a task failure with ``errorType`` as
the error name, so ``Retry``/``Catch`` in the definitions behave as on AWS.
"""

from __future__ import annotations

import decimal
import importlib.util
import json
import logging
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from devstack.model import FunctionSpec, StackResources
from devstack.patching import MotoPatch

LOG = logging.getLogger(__name__)


class HandlerUnavailable(Exception):
    """The handler file is missing or cannot be imported (a configuration problem, not a bug)."""


@dataclass
class LambdaContext:
    """The attributes of the Lambda context object that handlers and Powertools read."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    timeout_s: int
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = "local"
    identity: Any = None
    client_context: Any = None
    _deadline: float = 0.0

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_s
        self.log_group_name = self.log_group_name or f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the configured timeout (not enforced locally)."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass
class InvocationResult:
    """A Lambda response: the JSON payload and, for a function error, its kind."""

    payload: bytes
    function_error: str | None = None

    def json(self) -> Any:
        """The payload parsed as JSON."""
        return json.loads(self.payload) if self.payload else None


def _json_default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


class EnvironmentScope:
    """Applies a function's environment around a call.

    The variables every function shares (``Globals``) are set once for the process; only a
    function's own differing variables are applied per call, under a lock because
    ``os.environ`` is process-wide. Functions without such variables run concurrently.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._common: dict[str, str] = {}
        self._saved: dict[str, str | None] = {}

    def install_common(self, common: Mapping[str, str], removed: tuple[str, ...] = ()) -> None:
        """Set the shared variables (and unset ``removed``) for the whole process."""
        for key in [*common, *removed]:
            self._saved.setdefault(key, os.environ.get(key))
        for key in removed:
            os.environ.pop(key, None)
        os.environ.update(common)
        self._common = dict(common)

    def restore(self) -> None:
        """Undo :meth:`install_common`."""
        for key, value in self._saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved.clear()
        self._common = {}

    def differences(self, environment: Mapping[str, str]) -> dict[str, str | None]:
        """What must change in ``os.environ`` for this function (``None`` = unset)."""
        changes: dict[str, str | None] = {
            key: value for key, value in environment.items() if self._common.get(key) != value
        }
        changes.update({key: None for key in self._common if key not in environment})
        return changes

    @contextmanager
    def applied(self, environment: Mapping[str, str]) -> Iterator[None]:
        """Context in which ``os.environ`` holds ``environment`` on top of the shared values."""
        changes = self.differences(environment)
        if not changes:
            yield
            return
        with self._lock:
            saved = {key: os.environ.get(key) for key in changes}
            try:
                for key, value in changes.items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value
                yield
            finally:
                for key, value in saved.items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value


class LambdaRuntime:
    """Loads and invokes the handlers named in the template."""

    def __init__(self, resources: StackResources, env_scope: EnvironmentScope | None = None):
        self.resources = resources
        self.env = env_scope or EnvironmentScope()
        self._modules: dict[str, ModuleType] = {}
        self._import_lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="devstack-async")
        self._pending: set[Future[None]] = set()
        self._pending_lock = threading.Lock()
        self.dead_letter_sender: Any = None
        """Callable ``(queue_arn, body)`` used for failed asynchronous invocations."""

    # ----------------------------------------------------------------- loading

    def load_handler(self, spec: FunctionSpec) -> Any:
        """Import the handler module once (under the function's environment)."""
        with self._import_lock:
            module = self._modules.get(spec.logical_id)
            if module is None:
                module = self._import(spec)
                self._modules[spec.logical_id] = module
        handler = getattr(module, spec.handler_attribute, None)
        if not callable(handler):
            raise HandlerUnavailable(
                f"{spec.logical_id}: {spec.handler_file.name} has no callable {spec.handler_attribute!r}"
            )
        return handler

    def _import(self, spec: FunctionSpec) -> ModuleType:
        path = spec.handler_file
        if not path.is_file():
            raise HandlerUnavailable(f"{spec.logical_id}: handler file {spec.handler} not found")
        module_name = f"_devstack_handlers.{spec.logical_id}.{spec.handler.rsplit('.', 1)[0]}"
        module_spec = importlib.util.spec_from_file_location(module_name, path)
        if module_spec is None or module_spec.loader is None:
            raise HandlerUnavailable(f"{spec.logical_id}: cannot load {path.name}")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_name] = module
        try:
            with self.env.applied(spec.environment):
                module_spec.loader.exec_module(module)
        except Exception as error:
            sys.modules.pop(module_name, None)
            LOG.exception("%s: importing the handler failed", spec.logical_id)
            raise HandlerUnavailable(
                f"{spec.logical_id}: importing the handler failed: {type(error).__name__}: {error}"
            ) from error
        return module

    # --------------------------------------------------------------- invoking

    def call(self, spec: FunctionSpec, event: Any) -> Any:
        """Call the handler and return its raw result; exceptions propagate.

        Raises :class:`HandlerUnavailable` when the handler cannot be loaded.
        """
        handler = self.load_handler(spec)
        context = LambdaContext(
            function_name=spec.name,
            invoked_function_arn=spec.arn,
            memory_limit_in_mb=spec.memory_mb,
            timeout_s=spec.timeout_s,
        )
        with self.env.applied(spec.environment):
            return handler(event, context)

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
            LOG.error("%s: %s", spec.logical_id, error)
            return self._error("Runtime.ImportModuleError", str(error))
        except Exception as error:
            # Where it failed, without the exception's message (it may carry customer data).
            frames = "".join(traceback.format_tb(error.__traceback__)).rstrip()
            LOG.warning(
                "%s raised %s (%d ms)\n%s",
                spec.logical_id,
                type(error).__name__,
                _elapsed_ms(started),
                frames,
            )
            return self._error(type(error).__name__, str(error), traceback.format_exception(error))
        try:
            body = json.dumps(result, default=_json_default).encode("utf-8")
        except (TypeError, ValueError) as error:
            return self._error("Runtime.MarshalError", f"Unable to marshal response: {error}")
        LOG.info("%s invoked (%d ms)", spec.logical_id, _elapsed_ms(started))
        return InvocationResult(body)

    @staticmethod
    def _error(error_type: str, message: str, stack: list[str] | None = None) -> InvocationResult:
        body = {"errorMessage": message, "errorType": error_type, "stackTrace": stack or []}
        return InvocationResult(json.dumps(body).encode("utf-8"), function_error="Unhandled")

    def invoke_async(self, spec: FunctionSpec, payload: bytes | str) -> Future[None]:
        """An asynchronous (Event) invocation: retried, then sent to the function's DLQ."""
        future = self._executor.submit(self._run_async, spec, payload)
        with self._pending_lock:
            self._pending.add(future)
        future.add_done_callback(self._forget)
        return future

    def _forget(self, future: Future[None]) -> None:
        with self._pending_lock:
            self._pending.discard(future)

    def _run_async(self, spec: FunctionSpec, payload: bytes | str) -> None:
        for _attempt in range(spec.max_async_retries + 1):
            result = self.invoke(spec, payload)
            if result.function_error is None:
                return
        LOG.warning("%s: asynchronous invocation failed after %d attempts", spec.logical_id, _attempt + 1)
        if spec.dead_letter_arn and self.dead_letter_sender is not None:
            body = payload.decode("utf-8") if isinstance(payload, bytes) else payload
            self.dead_letter_sender(spec.dead_letter_arn, body)
            LOG.info("%s: event sent to its dead-letter queue", spec.logical_id)

    def drain(self, timeout: float = 30.0) -> None:
        """Wait until pending asynchronous invocations are done (for tests)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._pending_lock:
                pending = list(self._pending)
            if not pending:
                return
            for future in pending:
                future.result(timeout=max(0.0, deadline - time.monotonic()))

    def shutdown(self) -> None:
        """Stop accepting asynchronous work and wait for what runs."""
        self._executor.shutdown(wait=True, cancel_futures=True)


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


# ------------------------------------------------------------------ moto patch

_active_runtime: LambdaRuntime | None = None


def _header(headers: Any, name: str) -> str | None:
    if headers is None:
        return None
    value = headers.get(name)
    if value is None and isinstance(headers, Mapping):
        lowered = name.lower()
        value = next((v for k, v in headers.items() if str(k).lower() == lowered), None)
    return None if value is None else str(value)


def _patched_invoke(
    backend: Any,
    function_name: str,
    qualifier: str | None,
    body: Any,
    headers: Any,
    response_headers: Any,
) -> str | bytes | None:
    runtime = _active_runtime
    function = backend.get_function(function_name, qualifier)
    spec = runtime.resources.function_by_name(function.function_name) if runtime else None
    if runtime is None or spec is None:
        return _INVOKE.original(backend, function_name, qualifier, body, headers, response_headers)
    payload = body if isinstance(body, (bytes, str)) else json.dumps(body)
    invocation_type = _header(headers, "X-Amz-Invocation-Type") or "RequestResponse"
    if invocation_type == "Event":
        runtime.invoke_async(spec, payload)
        return b""
    if invocation_type == "DryRun":
        return b""
    result = runtime.invoke(spec, payload)
    if result.function_error:
        response_headers["x-amz-function-error"] = result.function_error
    response_headers["Content-Length"] = str(len(result.payload))
    return result.payload


_INVOKE = MotoPatch(
    "moto.awslambda_simple.models.LambdaSimpleBackend",
    "invoke",
    lambda _original: _patched_invoke,
    works_around="moto runs Lambda code only in Docker; without it (LambdaSimpleBackend) invoke returns a canned reply",
)


def install_lambda_patch(runtime: LambdaRuntime) -> None:
    """Route moto's simple Lambda backend to ``runtime`` (idempotent)."""
    global _active_runtime  # noqa: PLW0603 - a process-wide patch
    _INVOKE.install()
    _active_runtime = runtime


def uninstall_lambda_patch() -> None:
    """Give moto its own ``invoke`` back."""
    global _active_runtime  # noqa: PLW0603
    _INVOKE.uninstall()
    _active_runtime = None
