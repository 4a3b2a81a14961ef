"""EventBridge API destinations, locally: what the bus would POST to a webhook is recorded for the console
(``/_dev/api/webhooks``) and, when ``DEVSTACK_WEBHOOK_URL`` is set, sent there with the connection's
credentials (``{{resolve:secretsmanager:...}}`` references read from moto's Secrets Manager at delivery)."""

import base64
import json
import re
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from moto.events.models import events_backends
from moto.secretsmanager.models import secretsmanager_backends

KEPT = 100  # deliveries the console shows, newest first
_SECRET = re.compile(r"\{\{resolve:secretsmanager:([^:}]+):SecretString:([^:}]+)\}\}")


class WebhookCaller:
    def __init__(self, forward_to: str | None = None) -> None:
        self.forward_to = forward_to
        self.deliveries: deque[dict[str, Any]] = deque(maxlen=KEPT)

    def call(self, destination_arn: str, payload: str) -> None:
        """Deliver one event; raises when the webhook refuses it (the rule's dead-letter queue gets it)."""
        _, _, _, region, account, _ = destination_arn.split(":", 5)
        events = events_backends[account][region]
        destination = next(d for d in events.destinations.values() if d.arn == destination_arn)
        connection = next(c for c in events.connections.values() if c.arn == destination.connection_arn)
        header, _ = _authorization(connection.auth_parameters, str)  # (only its name is shown)
        delivery = {"at": datetime.now(UTC).isoformat(timespec="seconds"), "endpoint": destination.invocation_endpoint,
                    "method": destination.http_method, "authorization": connection.authorization_type,
                    "authHeader": header, "event": json.loads(payload), "forwardedTo": self.forward_to,
                    "status": None}  # fmt: skip
        self.deliveries.appendleft(delivery)
        if not self.forward_to:
            return
        header, value = _authorization(connection.auth_parameters, _secrets(account, region))
        headers = {"Content-Type": "application/json; charset=utf-8", header: value}
        request = urllib.request.Request(self.forward_to, payload.encode(), headers, method=destination.http_method)
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                delivery["status"] = answer.status
        except urllib.error.HTTPError as refused:
            delivery["status"] = refused.code
            raise RuntimeError(f"the webhook answered {refused.code}") from None
        except urllib.error.URLError as unreachable:
            delivery["status"] = f"unreachable: {unreachable.reason}"
            raise


def _authorization(auth: dict[str, Any], resolve: Callable[[str], str]) -> tuple[str, str]:
    """The header the connection adds to every request, and its value."""
    if api_key := auth.get("ApiKeyAuthParameters"):
        return str(api_key["ApiKeyName"]), resolve(str(api_key["ApiKeyValue"]))
    basic = auth.get("BasicAuthParameters") or {}
    pair = f"{resolve(str(basic.get('Username', '')))}:{resolve(str(basic.get('Password', '')))}"
    return "Authorization", "Basic " + base64.b64encode(pair.encode()).decode()


def _secrets(account: str, region: str) -> Callable[[str], str]:
    """Resolves the dynamic references to Secrets Manager CloudFormation resolves on AWS."""
    backend = secretsmanager_backends[account][region]

    def secret(match: re.Match[str]) -> str:
        stored = backend.get_secret_value(match.group(1), None, None)  # type: ignore[arg-type] # (the current one)
        return str(json.loads(stored["SecretString"])[match.group(2)])

    return lambda value: _SECRET.sub(secret, value)
