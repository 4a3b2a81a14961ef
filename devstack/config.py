"""Settings of the local stack (ports, template, parameter and environment overrides: a default that
works on a fresh checkout, ``DEVSTACK_*`` variables change it), and boto3 clients for its moto."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from devstack.cfn import ACCOUNT_ID, REGION

REPO_ROOT = Path(__file__).resolve().parent.parent


def default_env_overrides(host: str, http_port: int) -> dict[str, str | None]:
    """Handler environment values that differ locally (``None`` unsets the variable): the content
    layer is the repository's ``templates`` folder; links in emails point at the local server; no
    SSM parameter (the shared package's development secret); no X-Ray daemon; an event review mails
    right away instead of days after the event (``DEVSTACK_ENV_REVIEW_EVENT_DELAY_HOURS=48``)."""
    return {"CONTENT_DIR": str(REPO_ROOT / "templates"), "PUBLIC_BASE_URL": f"http://{host}:{http_port}",
            "TOKEN_SECRET_PARAMETER": None, "POWERTOOLS_TRACE_DISABLED": "true",
            "REVIEW_EVENT_DELAY_HOURS": "0"}  # fmt: skip


@dataclass
class StackConfig:
    """How to run the local stack. Port 0 picks a free port (useful in tests)."""

    host: str = "127.0.0.1"
    http_port: int = 3000
    aws_port: int = 5000
    template_path: Path = field(default_factory=lambda: REPO_ROOT / "template.yaml")
    stack_name: str = "selfservice-local"
    parameter_overrides: dict[str, str] = field(default_factory=dict)  # template parameters instead of their Default
    env_overrides: dict[str, str | None] = field(default_factory=dict)  # on top of default_env_overrides()
    seed: bool = True  # write the demo profiles (devstack.demo) before serving
    announce: bool = True  # print the URLs when the stack is ready
    webhook_url: str | None = None  # where API destinations deliver locally (else only the console shows them)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> StackConfig:
        """``DEVSTACK_HOST``, ``_HTTP_PORT``, ``_AWS_PORT``, ``_TEMPLATE``, ``_SEED`` (0/1),
        ``DEVSTACK_WEBHOOK_URL``, ``DEVSTACK_PARAM_<Parameter>`` and ``DEVSTACK_ENV_<VARIABLE>``."""
        env = os.environ if environ is None else environ
        prefixed = lambda prefix: {k.removeprefix(prefix): v for k, v in env.items() if k.startswith(prefix)}  # noqa: E731
        return cls(host=env.get("DEVSTACK_HOST", "127.0.0.1"), http_port=int(env.get("DEVSTACK_HTTP_PORT", "3000")),
                   aws_port=int(env.get("DEVSTACK_AWS_PORT", "5000")),
                   template_path=Path(env.get("DEVSTACK_TEMPLATE") or REPO_ROOT / "template.yaml").resolve(),
                   seed=env.get("DEVSTACK_SEED", "1") not in ("0", "false", "no"),
                   webhook_url=env.get("DEVSTACK_WEBHOOK_URL") or None,
                   parameter_overrides=prefixed("DEVSTACK_PARAM_"),
                   env_overrides=dict(prefixed("DEVSTACK_ENV_")))  # fmt: skip


LOCAL_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "aws_session_token": "testing"}


class AwsClients:
    """Creates (and caches) boto3 clients for the local endpoint; ``clients("dynamodb")``."""

    def __init__(self, endpoint_url: str | None, region: str = REGION, account_id: str = ACCOUNT_ID):
        self.endpoint_url, self.region, self.account_id = endpoint_url, region, account_id
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def __call__(self, service: str) -> Any:
        with self._lock:  # boto3 clients are thread-safe once created, their creation is not
            if service not in self._clients:
                config = Config(retries={"max_attempts": 2, "mode": "standard"})
                self._clients[service] = boto3.session.Session().client(
                    service, region_name=self.region, endpoint_url=self.endpoint_url, config=config, **LOCAL_CREDENTIALS
                )
            return self._clients[service]
