"""boto3 clients pointed at the local moto endpoint.

One small factory so that the same provisioning and console code runs against a
``ThreadedMotoServer`` (endpoint URL) and under an in-process ``mock_aws`` (no URL).
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config

from devstack.cfn import ACCOUNT_ID, REGION

LOCAL_CREDENTIALS = {
    "aws_access_key_id": "testing",
    "aws_secret_access_key": "testing",
    "aws_session_token": "testing",
}


class AwsClients:
    """Creates (and caches) boto3 clients for the local endpoint."""

    def __init__(self, endpoint_url: str | None, region: str = REGION, account_id: str = ACCOUNT_ID):
        self.endpoint_url = endpoint_url
        self.region = region
        self.account_id = account_id
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def __call__(self, service: str) -> Any:
        """A client for ``service`` (boto3 clients are thread-safe once created)."""
        with self._lock:
            if service not in self._clients:
                self._clients[service] = boto3.session.Session().client(
                    service,
                    region_name=self.region,
                    endpoint_url=self.endpoint_url,
                    config=Config(retries={"max_attempts": 2, "mode": "standard"}),
                    **LOCAL_CREDENTIALS,
                )
            return self._clients[service]
