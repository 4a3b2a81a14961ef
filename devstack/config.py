"""Settings of the local stack: ports, template, parameter and environment overrides.

Everything has a default that works on a fresh checkout (``python -m devstack``); the
``DEVSTACK_*`` environment variables change it without editing code.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
"""The project checkout this package lives in."""

PARAM_PREFIX = "DEVSTACK_PARAM_"
ENV_PREFIX = "DEVSTACK_ENV_"


def default_env_overrides(host: str, http_port: int) -> dict[str, str | None]:
    """Handler environment values that differ locally (``None`` unsets the variable).

    - ``CONTENT_DIR``: the content layer is extracted to /opt on Lambda; locally it is
      the repository's ``templates`` folder.
    - ``PUBLIC_BASE_URL``: links in emails must point at the local HTTP server.
    - ``TOKEN_SECRET_PARAMETER``: unset, so the shared package uses its development secret
      instead of reading SSM.
    - ``POWERTOOLS_TRACE_DISABLED``: there is no X-Ray daemon locally.
    - ``REVIEW_EVENT_DELAY_HOURS``: an event review (e.g. "emit shop purchase" in the console)
      mails right away instead of two days after the event
      (``DEVSTACK_ENV_REVIEW_EVENT_DELAY_HOURS=48`` brings the delay back).
    """
    return {
        "CONTENT_DIR": str(REPO_ROOT / "templates"),
        "PUBLIC_BASE_URL": f"http://{host}:{http_port}",
        "TOKEN_SECRET_PARAMETER": None,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "REVIEW_EVENT_DELAY_HOURS": "0",
    }


@dataclass
class StackConfig:
    """How to run the local stack. Port 0 picks a free port (useful in tests)."""

    host: str = "127.0.0.1"
    http_port: int = 3000
    aws_port: int = 5000
    template_path: Path = field(default_factory=lambda: REPO_ROOT / "template.yaml")
    stack_name: str = "selfservice-local"
    parameter_overrides: dict[str, str] = field(default_factory=dict)
    """Template parameter values instead of their Default."""
    env_overrides: dict[str, str | None] = field(default_factory=dict)
    """Handler environment values on top of :func:`default_env_overrides`."""
    seed: bool = True
    """Call ``devstack.demo.seed_demo_profiles()`` once the resources exist."""
    announce: bool = True
    """Print the URLs when the stack is up."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> StackConfig:
        """Read ``DEVSTACK_HOST``, ``DEVSTACK_HTTP_PORT``, ``DEVSTACK_AWS_PORT``,
        ``DEVSTACK_TEMPLATE``, ``DEVSTACK_SEED`` (0/1), ``DEVSTACK_PARAM_<Parameter>`` and
        ``DEVSTACK_ENV_<VARIABLE>``."""
        env = os.environ if environ is None else environ
        config = cls(
            host=env.get("DEVSTACK_HOST", "127.0.0.1"),
            http_port=int(env.get("DEVSTACK_HTTP_PORT", "3000")),
            aws_port=int(env.get("DEVSTACK_AWS_PORT", "5000")),
            seed=env.get("DEVSTACK_SEED", "1") not in ("0", "false", "no"),
        )
        if env.get("DEVSTACK_TEMPLATE"):
            config.template_path = Path(env["DEVSTACK_TEMPLATE"]).resolve()
        config.parameter_overrides = _prefixed(env, PARAM_PREFIX)
        config.env_overrides = dict(_prefixed(env, ENV_PREFIX))
        return config


def _prefixed(env: Mapping[str, str], prefix: str) -> dict[str, str]:
    """``{PREFIX}NAME=value`` variables as ``{NAME: value}``."""
    return {key.removeprefix(prefix): value for key, value in env.items() if key.startswith(prefix)}
