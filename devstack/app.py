"""Starting and stopping the whole local stack in one process.

:func:`start` brings up moto (the AWS endpoint), creates the template's resources there,
routes Lambda invocations and EventBridge deliveries to the real handlers, starts the HTTP
gateway with the developer console, and seeds demo data. It returns a
:class:`RunningStack` whose :meth:`~RunningStack.stop` undoes all of it, so tests can run
the stack in-process exactly as ``python -m devstack`` does.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from unittest import mock

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from devstack import outbox
from devstack.aws import LOCAL_CREDENTIALS, AwsClients
from devstack.cfn import Template
from devstack.config import StackConfig, default_env_overrides
from devstack.console import PREFIX, DevConsole
from devstack.dynamodb import install_transactions_patch, uninstall_transactions_patch
from devstack.events import EventDelivery, install_events_patch, uninstall_events_patch
from devstack.gateway import HttpGateway
from devstack.lambdas import EnvironmentScope, LambdaRuntime, install_lambda_patch, uninstall_lambda_patch
from devstack.model import StackResources
from devstack.provision import Provisioner, ensure_python_layers_importable
from devstack.stepfunctions import install_stepfunctions_patch, uninstall_stepfunctions_patch

if TYPE_CHECKING:
    from moto.core.config import DefaultConfig

LOG = logging.getLogger(__name__)

MOTO_CONFIG: DefaultConfig = {
    "stepfunctions": {"execute_state_machine": True},
    "lambda": {"use_docker": False},
}
"""moto settings the stack needs: run state machines, and the Lambda backend without Docker."""

FINISHED_STATUSES = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")


class StackStartError(RuntimeError):
    """The stack could not start (port taken, template invalid ...)."""


class _QuietRequestHandler(WSGIRequestHandler):
    """The gateway logs route keys itself; raw paths and query strings may hold tokens or PII."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return


def _check_port_free(host: str, port: int, what: str) -> None:
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise StackStartError(f"{what} port {host}:{port} is not available ({error.strerror})") from error


def _send_to_queue(queue_arn: str, body: str) -> None:
    """Send to an SQS queue through moto's backend (works from any thread)."""
    from moto.sqs.models import sqs_backends

    _, _, _, region, account, name = queue_arn.split(":", 5)
    sqs_backends[account][region].send_message(queue_name=name, message_body=body)


@dataclass
class RunningStack:
    """A started local stack. Use :meth:`stop` (or a ``with`` block) to shut it down."""

    config: StackConfig
    resources: StackResources
    runtime: LambdaRuntime
    clients: AwsClients
    console: DevConsole
    http_url: str
    aws_url: str
    _stoppers: list[Callable[[], None]] = field(default_factory=list)
    _stopped: bool = False

    @property
    def console_url(self) -> str:
        """The developer console."""
        return f"{self.http_url}{PREFIX}"

    @property
    def urls(self) -> dict[str, str]:
        """Pages, console and AWS endpoint."""
        return {"pages": f"{self.http_url}/", "console": self.console_url, "aws": self.aws_url}

    def outbox(self) -> list[dict[str, Any]]:
        """Every sent email, newest first (the same items as ``GET /_dev/api/outbox``)."""
        return outbox.list_outbox(self.clients.account_id, self.clients.region)

    def clear_outbox(self) -> int:
        """Empty the outbox."""
        return outbox.clear_outbox(self.clients.account_id, self.clients.region)

    def drain(self, timeout: float = 30.0) -> None:
        """Wait for asynchronous Lambda invocations (EventBridge targets) to finish."""
        self.runtime.drain(timeout)

    def wait_for_executions(self, timeout: float = 60.0, poll: float = 0.1) -> list[dict[str, Any]]:
        """Wait until no execution of the template's state machines is running; returns them all."""
        deadline = time.monotonic() + timeout
        while True:
            self.drain(max(0.0, deadline - time.monotonic()))
            executions = self.console.executions()
            if all(item["status"] in FINISHED_STATUSES for item in executions):
                return executions
            if time.monotonic() > deadline:
                raise TimeoutError("state machine executions still running")
            time.sleep(poll)

    def stop(self) -> None:
        """Stop both servers and undo every process-wide change (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        while self._stoppers:
            stopper = self._stoppers.pop()
            try:
                stopper()
            except Exception:
                LOG.debug("stop step failed", exc_info=True)
        LOG.info("local stack stopped")

    def __enter__(self) -> RunningStack:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start(
    host: str | None = None,
    http_port: int | None = None,
    aws_port: int | None = None,
    *,
    seed: bool | None = None,
    config: StackConfig | None = None,
) -> RunningStack:
    """Start the local stack; arguments override ``config`` (default: from ``DEVSTACK_*``)."""
    config = config or StackConfig.from_env()
    if host is not None:
        config.host = host
    if http_port is not None:
        config.http_port = http_port
    if aws_port is not None:
        config.aws_port = aws_port
    if seed is not None:
        config.seed = seed
    stoppers: list[Callable[[], None]] = []
    try:
        return _start(config, stoppers)
    except BaseException:
        for stopper in reversed(stoppers):
            try:
                stopper()
            except Exception:
                LOG.debug("cleanup after failed start failed", exc_info=True)
        raise


def _set_process_env(values: dict[str, str], remove: tuple[str, ...]) -> Callable[[], None]:
    saved = {key: os.environ.get(key) for key in [*values, *remove]}
    for key in remove:
        os.environ.pop(key, None)
    os.environ.update(values)

    def restore() -> None:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    return restore


def _start(config: StackConfig, stoppers: list[Callable[[], None]]) -> RunningStack:  # noqa: PLR0915 - linear startup
    from moto.core.config import default_user_config
    from moto.moto_api._internal.models import moto_api_backend
    from moto.server import ThreadedMotoServer

    started = time.monotonic()
    template = Template.load(config.template_path)
    _check_port_free(config.host, config.aws_port, "AWS endpoint")
    _check_port_free(config.host, config.http_port, "HTTP")
    werkzeug_logger = logging.getLogger("werkzeug")
    if werkzeug_logger.level == logging.NOTSET:
        werkzeug_logger.setLevel(logging.WARNING)  # moto's per-request lines would drown everything else

    # moto: its configuration and a clean state. Works around: moto's public config (POST /moto-api/config,
    # ``mock_aws(config=...)`` in tests) has no way back for a server in this process; patch.dict restores it on stop.
    moto_config = mock.patch.dict(default_user_config, MOTO_CONFIG)
    moto_config.start()
    stoppers.append(moto_config.stop)
    moto_api_backend.reset()

    moto_server = ThreadedMotoServer(ip_address=config.host, port=config.aws_port, verbose=False)
    moto_server.start()
    stoppers.append(lambda: _stop_moto(moto_server))
    aws_host, aws_port = moto_server.get_host_and_port()
    aws_url = f"http://{aws_host}:{aws_port}"
    stoppers.append(
        _set_process_env(
            {
                "AWS_ACCESS_KEY_ID": LOCAL_CREDENTIALS["aws_access_key_id"],
                "AWS_SECRET_ACCESS_KEY": LOCAL_CREDENTIALS["aws_secret_access_key"],
                "AWS_SESSION_TOKEN": LOCAL_CREDENTIALS["aws_session_token"],
                "AWS_DEFAULT_REGION": "eu-central-1",
                "AWS_REGION": "eu-central-1",
                "AWS_ENDPOINT_URL": aws_url,
                "MOTO_PORT": str(aws_port),
            },
            remove=("AWS_PROFILE", "AWS_DEFAULT_PROFILE"),
        )
    )

    # Bind the HTTP port before creating resources: PUBLIC_BASE_URL needs the real port.
    try:
        http_server: BaseWSGIServer = make_server(
            config.host,
            config.http_port,
            _not_ready,
            threaded=True,
            request_handler=_QuietRequestHandler,
        )
    except (OSError, SystemExit) as error:  # werkzeug exits when the port is taken
        raise StackStartError(f"HTTP port {config.host}:{config.http_port} is not available") from error
    stoppers.append(http_server.server_close)
    http_url = f"http://{config.host}:{http_server.server_port}"

    clients = AwsClients(aws_url)
    env_overrides = {**default_env_overrides(config.host, http_server.server_port), **config.env_overrides}
    provisioner = Provisioner(
        template,
        clients,
        parameter_overrides=config.parameter_overrides,
        env_overrides=env_overrides,
        stack_name=config.stack_name,
    )
    resources = provisioner.provision_all()
    ensure_python_layers_importable(provisioner.python_layer_dirs)
    env_scope = EnvironmentScope()
    removed = tuple(key for key, value in env_overrides.items() if value is None)
    env_scope.install_common(resources.common_environment, removed)
    stoppers.append(env_scope.restore)

    # Connect moto to the handlers: Lambda invocations, EventBridge targets, SES send times.
    runtime = LambdaRuntime(resources, env_scope)
    runtime.dead_letter_sender = _send_to_queue
    stoppers.append(runtime.shutdown)
    install_lambda_patch(runtime)
    stoppers.append(uninstall_lambda_patch)
    install_events_patch(EventDelivery(runtime, sqs_sender=_send_to_queue))
    stoppers.append(uninstall_events_patch)
    outbox.install_outbox_patch()
    stoppers.append(outbox.uninstall_outbox_patch)
    install_stepfunctions_patch()
    stoppers.append(uninstall_stepfunctions_patch)
    install_transactions_patch()
    stoppers.append(uninstall_transactions_patch)

    urls = {"pages": f"{http_url}/", "console": f"{http_url}{PREFIX}", "aws": aws_url}
    console = DevConsole(runtime, clients, urls)
    http_server.app = HttpGateway(runtime, extra_apps={PREFIX: console})
    http_thread = threading.Thread(target=http_server.serve_forever, name="devstack-http", daemon=True)
    http_thread.start()
    stoppers.append(lambda: _stop_http(http_server, http_thread))

    stack = RunningStack(config, resources, runtime, clients, console, http_url, aws_url, _stoppers=stoppers)
    iam_routes = [route.route_key for route in resources.http_routes if route.iam_auth]
    if iam_routes:
        LOG.info("IAM-protected on AWS, unsigned requests accepted locally: %s", ", ".join(iam_routes))
    if config.seed:
        console.demo_profiles = _seed()
    LOG.info("local stack up in %.1f s", time.monotonic() - started)
    if config.announce:
        print(
            f"\n  Pages:     {urls['pages']}\n  Console:   {urls['console']}\n  AWS:       {aws_url}\n",
            flush=True,
        )
    return stack


def _seed() -> list[dict[str, Any]]:
    from devstack import demo

    try:
        profiles = list(demo.seed_demo_profiles())
    except Exception as error:
        LOG.error("seeding demo profiles failed: %s: %s", type(error).__name__, error)
        LOG.debug("seed traceback", exc_info=True)
        return []
    LOG.info("seeded %d demo profile(s)", len(profiles))
    return profiles


def _not_ready(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
    return [b"starting"]


def _stop_moto(server: Any) -> None:
    server.stop()
    inner = getattr(server, "_server", None)
    if inner is not None:
        inner.server_close()


def _stop_http(server: BaseWSGIServer, thread: threading.Thread) -> None:
    server.shutdown()
    thread.join(timeout=10)
