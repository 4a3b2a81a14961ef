"""Fixes to moto's executing Step Functions backend.

With ``execute_state_machine`` on, moto 5.2 uses ``StepFunctionsParserBackend``, whose
``start_execution`` keeps a missing ``name`` as ``None``: every unnamed execution is then
called "None" and the second one fails with ExecutionAlreadyExists. AWS generates a UUID
name, and so does this wrapper.

moto's ``Wait`` with ``Timestamp``/``TimestampPath`` compares the (UTC) timestamp with the
machine's naive local time, so west of Greenwich a wait lasts hours longer than asked (the
event review waits until ``occurredAt`` + delay). The wrapper adds the local UTC offset back.
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from typing import Any

_original_start: Any = None
_original_wait: Any = None


def install_stepfunctions_patch() -> None:
    """Give unnamed executions a UUID name and make timestamp waits UTC (idempotent)."""
    global _original_start  # noqa: PLW0603 - a process-wide patch
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    if _original_start is not None:
        return
    original = StepFunctionsParserBackend.start_execution
    _original_start = original

    @functools.wraps(original)
    def start_execution(
        self: Any,
        state_machine_arn: str,
        name: Any = None,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        return original(self, state_machine_arn, name or str(uuid.uuid4()), *args, **kwargs)

    StepFunctionsParserBackend.start_execution = start_execution  # type: ignore[method-assign]
    _install_wait_fix()


def _install_wait_fix() -> None:
    global _original_wait  # noqa: PLW0603 - a process-wide patch
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.timestamp import Timestamp

    original = Timestamp._get_wait_seconds
    _original_wait = original

    @functools.wraps(original)
    def get_wait_seconds(self: Any, env: Any) -> int:
        offset = dt.datetime.now().astimezone().utcoffset() or dt.timedelta(0)
        return int(original(self, env) + offset.total_seconds())

    Timestamp._get_wait_seconds = get_wait_seconds  # type: ignore[method-assign]


def uninstall_stepfunctions_patch() -> None:
    """Give moto its own ``start_execution`` and ``Wait`` back."""
    global _original_start  # noqa: PLW0603
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    if _original_start is not None:
        StepFunctionsParserBackend.start_execution = _original_start  # type: ignore[method-assign]
    _original_start = None
    _uninstall_wait_fix()


def _uninstall_wait_fix() -> None:
    global _original_wait  # noqa: PLW0603
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.timestamp import Timestamp

    if _original_wait is not None:
        Timestamp._get_wait_seconds = _original_wait  # type: ignore[method-assign]
    _original_wait = None
