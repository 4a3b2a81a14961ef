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

from devstack.patching import MotoPatch, install_all, uninstall_all


def _start_with_a_name(original: Any) -> Any:
    @functools.wraps(original)
    def start_execution(self: Any, state_machine_arn: str, name: Any = None, *args: Any, **kwargs: Any) -> Any:
        return original(self, state_machine_arn, name or str(uuid.uuid4()), *args, **kwargs)

    return start_execution


def _utc_wait(original: Any) -> Any:
    @functools.wraps(original)
    def get_wait_seconds(self: Any, env: Any) -> int:
        offset = dt.datetime.now().astimezone().utcoffset() or dt.timedelta(0)
        return int(original(self, env) + offset.total_seconds())

    return get_wait_seconds


_PATCHES = (
    MotoPatch(
        "moto.stepfunctions.parser.models.StepFunctionsParserBackend",
        "start_execution",
        _start_with_a_name,
        works_around='moto names every unnamed execution "None", so the second fails with ExecutionAlreadyExists',
    ),
    MotoPatch(
        "moto.stepfunctions.parser.asl.component.state.wait.wait_function.timestamp.Timestamp",
        "_get_wait_seconds",
        _utc_wait,
        works_around="moto's Wait with Timestamp compares a UTC time with the machine's naive local time",
    ),
)


def install_stepfunctions_patch() -> None:
    """Give unnamed executions a UUID name and make timestamp waits UTC (idempotent)."""
    install_all(_PATCHES)


def uninstall_stepfunctions_patch() -> None:
    """Give moto its own ``start_execution`` and ``Wait`` back."""
    uninstall_all(_PATCHES)
