"""Shared fixtures: AWS on moto with every resource built from template.yaml, and the handlers
reached through the same HTTP-API gateway the local stack uses.

The template is provisioned into moto once per session (that takes seconds); each test that asks
for ``stack`` gets it with a clean slate instead (empty table, outbox, queues and executions; the
template's environment, fresh process caches, freshly imported handlers and a new HTTP client),
which takes milliseconds. moto stays on between such tests and is switched off for every other test,
so tests that start their own moto (or a moto server) see no trace of it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.custom_responses_mock import reset_responses_mock
from moto.core.models import responses_mock
from moto.ses.models import ses_backends
from werkzeug.test import Client

from devstack import patches
from devstack.app import MOTO_CONFIG
from devstack.cfn import REGION, Template
from devstack.config import AwsClients, default_env_overrides
from devstack.provision import Provisioner, StackResources
from devstack.runtime import HttpGateway, LambdaRuntime
from selfservice.catalog import cached_catalog
from selfservice.settings import get_settings
from tests import slate

REPO = Path(__file__).resolve().parents[1]
AWS_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}

# As on Lambda, the service name is in the environment before any shared module is imported:
# Powertools names a child logger (``<service>.<module>``) when the module is imported, and a test
# module that imports the shared package at collection must not leave its loggers unattached.
os.environ.setdefault(
    "POWERTOOLS_SERVICE_NAME",
    Template.load(REPO / "template.yaml").globals["Function"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"],
)


@dataclass
class ApiAnswer:
    status: int
    headers: dict[str, str]
    text: str

    @property
    def json(self) -> Any:
        return json.loads(self.text)


@dataclass
class Stack:
    """The template's resources on moto, the in-process Lambda runtime and an HTTP client."""

    resources: StackResources
    runtime: LambdaRuntime
    aws: AwsClients
    client: Client
    baseline: slate.Baseline

    @property
    def table(self) -> str:
        return str(self.resources.refs["ProfileTable"])

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: str | bytes | None = None,
        headers: dict[str, str] | None = None,
        query: dict[str, str] | None = None,
    ) -> ApiAnswer:
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        response = self.client.open(
            path,
            method=method,
            data=data,
            query_string=query,
            headers={"content-type": "application/json", **(headers or {})},
        )
        return ApiAnswer(response.status_code, dict(response.headers), response.get_data(as_text=True))

    def items(self) -> list[dict[str, Any]]:
        """Every item of the table (tests only: the product never scans)."""
        return self.aws("dynamodb").scan(TableName=self.table, ConsistentRead=True)["Items"]

    def sent_emails(self) -> list[Any]:
        return list(ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages)


@dataclass
class Provisioned:
    resources: StackResources
    clients: AwsClients
    baseline: slate.Baseline


class SessionAws:
    """One moto for the test session, with template.yaml provisioned into it once.

    :meth:`resume` switches moto on (keeping its data) and provisions the template again only when
    the backends no longer hold it: a test that starts its own ``mock_aws`` or moto server resets
    every backend. :meth:`suspend` switches moto off and keeps its data.
    """

    def __init__(self) -> None:
        self._mock = mock_aws(config=MOTO_CONFIG)
        self._active = False
        self._provisioned: Provisioned | None = None

    def resume(self) -> Provisioned:
        if not self._active:
            reset_responses_mock(responses_mock)  # moto registers its URL patterns again on every start
            self._mock.start(reset=self._provisioned is None)
            self._active = True
        if self._provisioned is None or not slate.intact(self._provisioned.baseline):
            if self._provisioned is not None:
                self._mock.reset()  # whatever another test's moto left behind
            self._provisioned = self._provision()
        return self._provisioned

    def suspend(self) -> None:
        if self._active:
            self._mock.stop(remove_data=False)
            self._active = False

    def close(self) -> None:
        if self._active:
            self._mock.stop()
            self._active = False
        self._provisioned = None

    @staticmethod
    def _provision() -> Provisioned:
        clients = AwsClients(None)
        provisioner = Provisioner(
            Template.load(REPO / "template.yaml"), clients, env_overrides=default_env_overrides("127.0.0.1", 3000)
        )
        resources = provisioner.provision_all()
        return Provisioned(resources, clients, slate.capture(clients.account_id, clients.region))


_session_aws: SessionAws | None = None


@pytest.fixture(scope="session")
def session_aws() -> Iterator[SessionAws]:
    global _session_aws  # noqa: PLW0603 - read by the hook below, which gets no fixtures
    _session_aws = SessionAws()
    yield _session_aws
    _session_aws.close()
    _session_aws = None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Before any fixture of a test without ``stack`` is set up: moto off (it may start its own)."""
    if _session_aws is not None and "stack" not in getattr(item, "fixturenames", ()):
        _session_aws.suspend()


def _reset_process_caches() -> None:
    # Imported here: the package's loggers must be created after POWERTOOLS_SERVICE_NAME is set above.
    from selfservice import bootstrap

    bootstrap.reset()
    get_settings.cache_clear()
    cached_catalog.cache_clear()


@pytest.fixture
def stack(session_aws: SessionAws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    provisioned = session_aws.resume()
    slate.empty(provisioned.baseline)
    for name, value in AWS_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    for name, value in provisioned.resources.common_environment.items():
        monkeypatch.setenv(name, value)
    _reset_process_caches()
    # A new runtime imports the handlers afresh: nothing a handler module cached outlives the test.
    runtime = LambdaRuntime(provisioned.resources)
    patches.install(runtime, only={"invoke"})  # a handler's own Lambda invocations run the template's handlers
    client = Client(settled(HttpGateway(runtime), runtime))
    yield Stack(provisioned.resources, runtime, provisioned.clients, client, provisioned.baseline)
    patches.uninstall()
    runtime.shutdown()
    _reset_process_caches()


def settled(app: Any, runtime: LambdaRuntime) -> Any:
    """The gateway, answering a request once the asynchronous invocations it started are done too:
    what a page handed over (the email a form asked for) is there when the test looks, as it is by
    the time a customer opens their inbox."""

    def answer(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = list(app(environ, start_response))
        runtime.drain()
        return body

    return answer
