"""The local stack as `make run` starts it: its own process, real ports, demo data."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
import requests

from tests.e2e.accessibility import Recorder

if TYPE_CHECKING:
    from playwright.sync_api import Browser

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalStack:
    def __init__(self, process: subprocess.Popen[str], http: str, aws: str, log: Path) -> None:
        self.process, self.http, self.aws, self.log = process, http, aws, log
        self.startup_seconds = 0.0
        self.first_answer: Any = None
        """What the stack answered first (the demo profiles), polled from the moment it was started."""

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def restart(self) -> None:
        """Start a new local stack in place of this stopped one (fresh demo data, new ports)."""
        fresh = start_local_stack()
        self.process, self.http, self.aws, self.log = fresh.process, fresh.http, fresh.aws, fresh.log
        self.startup_seconds, self.first_answer = fresh.startup_seconds, fresh.first_answer

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.aws,
            region_name="eu-central-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


def start_local_stack(extra_env: dict[str, str] | None = None) -> LocalStack:
    """``make run``'s stack in a process of its own (``extra_env``: more ``DEVSTACK_*`` settings)."""
    http_port, aws_port = free_port(), free_port()
    env = {
        **os.environ,
        **(extra_env or {}),
        "DEVSTACK_HTTP_PORT": str(http_port),
        "DEVSTACK_AWS_PORT": str(aws_port),
        "PYTHONPATH": f"{REPO / 'layers' / 'shared'}{os.pathsep}{REPO}",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("AWS_ENDPOINT_URL", None)
    # Output goes to a file: a pipe nobody reads would block the stack once it is full.
    log = Path(tempfile.mkstemp(prefix="local-stack-", suffix=".log")[1])
    with log.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "devstack"], cwd=REPO, env=env, text=True, stdout=sink, stderr=subprocess.STDOUT
        )
    started = time.monotonic()
    http = f"http://127.0.0.1:{http_port}"
    while time.monotonic() - started < 60:
        if process.poll() is not None:
            pytest.fail(f"the local stack exited: {log.read_text()[-3000:]}")
        try:
            first = requests.get(f"{http}/_dev/api/demo", timeout=5)
            break
        except requests.RequestException:
            time.sleep(0.05)
    else:
        process.kill()
        pytest.fail("the local stack was not up within a minute")
    stack = LocalStack(process, http, f"http://127.0.0.1:{aws_port}", log)
    stack.startup_seconds = time.monotonic() - started
    stack.first_answer = first.json() if first.status_code == 200 else first.text
    return stack


def stop_local_stack(stack: LocalStack) -> None:
    if stack.process.poll() is None:
        stack.process.send_signal(signal.SIGINT)
        try:
            stack.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            stack.process.kill()


@pytest.fixture(scope="module")
def local_stack() -> Iterator[LocalStack]:
    stack = start_local_stack()
    yield stack
    stop_local_stack(stack)


@pytest.fixture(autouse=True)
def _local_stack_is_running(request: pytest.FixtureRequest) -> None:
    """A test may stop its module's stack (Ctrl-C): the tests that run after it get a new one."""
    if "local_stack" in request.fixturenames:
        stack = request.getfixturevalue("local_stack")
        if stack.process.poll() is not None:
            stack.restart()


CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: `make test` installs it (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def accessibility() -> Recorder:
    """Records every axe-core run and keyboard check for the accessibility statement (tests/e2e/accessibility.py)."""
    return Recorder()
