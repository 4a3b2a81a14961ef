"""Shared fixtures: AWS on moto with every resource built from template.yaml, and the handlers
reached through the same HTTP-API gateway the local stack uses."""

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
from moto.ses.models import ses_backends
from werkzeug.test import Client

from devstack.aws import AwsClients
from devstack.cfn import REGION, Template
from devstack.config import default_env_overrides
from devstack.gateway import HttpGateway
from devstack.lambdas import LambdaRuntime
from devstack.model import StackResources
from devstack.provision import Provisioner
from selfservice import aws as selfservice_aws
from selfservice.catalog import cached_catalog
from selfservice.settings import get_settings

REPO = Path(__file__).resolve().parents[1]
MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}

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


def _reset_process_caches() -> None:
    selfservice_aws.reset_clients()
    get_settings.cache_clear()
    cached_catalog.cache_clear()


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws(config=MOTO_CONFIG):
        clients = AwsClients(None)
        provisioner = Provisioner(
            Template.load(REPO / "template.yaml"), clients, env_overrides=default_env_overrides("127.0.0.1", 3000)
        )
        resources = provisioner.provision_all()
        for name, value in resources.common_environment.items():
            monkeypatch.setenv(name, value)
        _reset_process_caches()
        runtime = LambdaRuntime(resources)
        yield Stack(resources, runtime, clients, Client(HttpGateway(runtime)))
        _reset_process_caches()
