"""Starting and stopping the whole local stack in one process: moto (the AWS endpoint), the template
provisioned into it, Lambda invocations and EventBridge deliveries routed to the real handlers, the
demo data, and only then HTTP: until the stack is ready its HTTP port is bound but not listening, so
a request is refused, never answered without data. Tests run it in-process as ``python -m devstack``."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from unittest import mock

import requests
from werkzeug.serving import WSGIRequestHandler, make_server

from devstack import patches
from devstack.cfn import Template
from devstack.config import LOCAL_CREDENTIALS, AwsClients, StackConfig, default_env_overrides
from devstack.console import PREFIX, DevConsole
from devstack.provision import Provisioner, StackResources
from devstack.runtime import EnvironmentScope, HttpGateway, LambdaRuntime

if TYPE_CHECKING:
    from moto.core.config import DefaultConfig

LOG = logging.getLogger(__name__)
MOTO_CONFIG: DefaultConfig = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
"""moto settings the stack needs: run state machines, and the Lambda backend without Docker."""
FINISHED_STATUSES = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")


class StackStartError(RuntimeError):
    """The stack could not start (port taken, template invalid ...)."""


class _QuietRequestHandler(WSGIRequestHandler):  # the gateway logs route keys; raw paths may hold tokens or PII
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return


@dataclass
class RunningStack:
    """A started local stack; :meth:`stop` shuts it down and undoes every process-wide change."""

    config: StackConfig
    resources: StackResources
    runtime: LambdaRuntime
    console: DevConsole
    http_url: str
    aws_url: str
    stoppers: list[Callable[[], Any]] = field(default_factory=list)

    @property
    def console_url(self) -> str:
        return f"{self.http_url}{PREFIX}"

    def drain(self, timeout: float = 30.0) -> None:  # (asynchronous Lambda invocations: EventBridge targets)
        self.runtime.drain(timeout)

    def wait_for_executions(self, timeout: float = 60.0) -> list[dict[str, Any]]:
        """Wait until no execution of the template's state machines is running; returns them all."""
        deadline = time.monotonic() + timeout
        while True:
            self.drain(max(0.0, deadline - time.monotonic()))
            executions = self.console.executions()
            if all(item["status"] in FINISHED_STATUSES for item in executions):
                return executions
            if time.monotonic() > deadline:
                raise TimeoutError("state machine executions still running")
            time.sleep(0.1)

    def stop(self) -> None:
        _unwind(self.stoppers)


def _unwind(stoppers: list[Callable[[], Any]]) -> None:
    while stoppers:
        try:
            stoppers.pop()()
        except Exception:
            LOG.debug("stop step failed", exc_info=True)


def start(config: StackConfig | None = None) -> RunningStack:
    """Start the local stack (configured from ``DEVSTACK_*`` by default); ready when it returns."""
    config, started, stoppers = config or StackConfig.from_env(), time.monotonic(), list[Callable[[], Any]]()
    try:
        stack = _start(config, Template.load(config.template_path), stoppers)
    except BaseException:
        _unwind(stoppers)
        raise
    LOG.info("local stack ready in %.1f s", time.monotonic() - started)
    if config.announce:
        print(f"\n  Local stack ready.\n  Pages:     {stack.http_url}/\n  Console:   {stack.console_url}\n"
              f"  AWS:       {stack.aws_url}\n", flush=True)  # fmt: skip
    return stack


def _bound_socket(host: str, port: int, what: str) -> socket.socket:
    """A socket bound to the port and not listening: the port is taken, a connection is refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise StackStartError(f"{what} port {host}:{port} is not available ({error.strerror})") from error
    return sock


def _start(config: StackConfig, template: Template, stoppers: list[Callable[[], Any]]) -> RunningStack:
    from moto.core.config import default_user_config
    from moto.server import ThreadedMotoServer

    http_socket = _bound_socket(config.host, config.http_port, "HTTP")
    stoppers.append(http_socket.close)
    http_port = http_socket.getsockname()[1]
    http_url = f"http://{config.host}:{http_port}"
    _bound_socket(config.host, config.aws_port, "AWS endpoint").close()  # said here, not in moto's thread
    if logging.getLogger("werkzeug").level == logging.NOTSET:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's per-request lines would drown the rest
    moto_config = mock.patch.dict(default_user_config, MOTO_CONFIG)  # (moto's public config has no way back)
    moto_config.start()
    stoppers.append(moto_config.stop)
    moto = ThreadedMotoServer(ip_address=config.host, port=config.aws_port, verbose=False)
    moto.start()
    stoppers += [moto._server.server_close, moto.stop]  # type: ignore[union-attr] # (stop leaves the socket open)
    host, port = moto.get_host_and_port()
    requests.post(f"http://{host}:{port}/moto-api/reset", timeout=30).raise_for_status()  # what this process had
    clients, process_env = AwsClients(aws_url := f"http://{host}:{port}"), EnvironmentScope()
    # boto3 and the AWS CLI in this process talk to moto; its state machine interpreter calls MOTO_PORT.
    endpoint = {"AWS_ENDPOINT_URL": aws_url, "MOTO_PORT": str(port), "AWS_REGION": clients.region}
    credentials = {key.upper(): value for key, value in LOCAL_CREDENTIALS.items()}
    process_env.install_common(endpoint | credentials | {"AWS_DEFAULT_REGION": clients.region}, ("AWS_PROFILE",))
    stoppers.append(process_env.restore)

    env_overrides = default_env_overrides(config.host, http_port) | config.env_overrides
    resources = Provisioner(template, clients, parameter_overrides=config.parameter_overrides,
                            env_overrides=env_overrides, stack_name=config.stack_name).provision_all()  # fmt: skip
    runtime = LambdaRuntime(resources)
    runtime.webhooks.forward_to = config.webhook_url
    runtime.env.install_common(resources.common_environment, tuple(k for k, v in env_overrides.items() if v is None))
    stoppers += [runtime.env.restore, runtime.shutdown, patches.uninstall]
    patches.install(runtime)
    stop_pumping = threading.Event()  # the pipes (a DynamoDB stream -> the bus) run twice a second
    pumping = threading.Thread(target=lambda: [runtime.pump() for _ in iter(lambda: stop_pumping.wait(0.5), True)])
    pumping.start()
    stoppers += [pumping.join, stop_pumping.set]
    console = DevConsole(runtime, clients, {"pages": f"{http_url}/", "console": f"{http_url}{PREFIX}", "aws": aws_url})
    if config.seed:
        console.demo_profiles = _seed()

    # Ready: only now the HTTP port listens.
    server = make_server(config.host, http_port, HttpGateway(runtime, extra_apps={PREFIX: console}), threaded=True,
                         request_handler=_QuietRequestHandler, fd=http_socket.fileno())  # fmt: skip
    http_socket.close()
    server.server_activate()
    thread = threading.Thread(target=server.serve_forever, name="devstack-http", daemon=True)
    thread.start()
    stoppers += [lambda: thread.join(timeout=10), server.server_close, server.shutdown]  # (run last to first)
    return RunningStack(config, resources, runtime, console, http_url, aws_url, stoppers)


def _seed() -> list[dict[str, Any]]:
    from devstack import demo

    try:
        LOG.info("seeded %d demo profile(s)", len(profiles := demo.seed_demo_profiles()))
        return profiles
    except Exception as error:
        LOG.error("seeding demo profiles failed: %s: %s", type(error).__name__, error)
        return []
