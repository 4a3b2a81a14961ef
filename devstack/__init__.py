"""Local development stack: the whole product on one machine, in one process.

moto is the AWS endpoint; the resources of ``template.yaml`` are created there; the real
handlers run in-process behind an API Gateway (HTTP API 2.0) stand-in, for Step Functions
tasks and for EventBridge targets; a developer console lives under ``/_dev/``.

Start it with ``python -m devstack``, or in tests::

    from devstack.app import start

    stack = start("127.0.0.1", http_port=0, aws_port=0, seed=False)
    try:
        ...  # stack.http_url, stack.aws_url, stack.outbox(), stack.wait_for_executions()
    finally:
        stack.stop()
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from devstack.app import RunningStack

__all__ = ["RunningStack", "start"]


def start(*args: Any, **kwargs: Any) -> RunningStack:
    """Start the local stack (see :func:`devstack.app.start`)."""
    from devstack.app import start as _start

    return _start(*args, **kwargs)
