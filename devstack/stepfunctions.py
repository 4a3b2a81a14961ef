"""A fix to moto's executing Step Functions backend.

With ``execute_state_machine`` on, moto 5.2 uses ``StepFunctionsParserBackend``, whose
``start_execution`` keeps a missing ``name`` as ``None``: every unnamed execution is then
called "None" and the second one fails with ExecutionAlreadyExists. AWS generates a UUID
name, and so does this wrapper.
"""

from __future__ import annotations

import functools
import uuid
from typing import Any

_original_start: Any = None


def install_stepfunctions_patch() -> None:
    """Give unnamed executions a UUID name (idempotent)."""
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


def uninstall_stepfunctions_patch() -> None:
    """Give moto its own ``start_execution`` back."""
    global _original_start  # noqa: PLW0603
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    if _original_start is not None:
        StepFunctionsParserBackend.start_execution = _original_start  # type: ignore[method-assign]
    _original_start = None
