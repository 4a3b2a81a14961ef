"""Observability helpers: a Tracer that costs nothing when tracing is off, and logging an
unexpected error without personal data.

Exception messages may carry what a customer typed (an address, a name), so only the exception's
type and where it happened (file, line, function) are logged — enough to find the bug.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from aws_lambda_powertools import Tracer
from aws_lambda_powertools.tracing.base import BaseProvider, BaseSegment

_TRUTHY = ("1", "y", "yes", "t", "true", "on")


def tracing_disabled() -> bool:
    """Powertools' own rule: off when POWERTOOLS_TRACE_DISABLED says so, outside Lambda, or in SAM local."""
    if os.getenv("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() in _TRUTHY:
        return True
    on_lambda = bool(os.getenv("LAMBDA_TASK_ROOT"))
    emulated = bool(os.getenv("AWS_SAM_LOCAL") or os.getenv("AWS_CHALICE_CLI_MODE"))
    return not on_lambda or emulated


def new_tracer() -> Tracer:
    """The Powertools Tracer; with tracing off, without the X-Ray SDK.

    ``Tracer()`` imports ``aws_xray_sdk.core`` even when tracing is disabled, and outside Lambda its
    recorder builds two X-Ray botocore clients at import: the largest single cost of a cold import
    locally. When tracing is off the Tracer gets a provider that does nothing; on Lambda with
    tracing on, it is the X-Ray recorder as before.
    """
    if tracing_disabled():
        return Tracer(disabled=True, provider=_NoTracing())
    return Tracer()


class _NoSegment(BaseSegment):
    def close(self, end_time: int | None = None) -> None:
        pass

    def add_subsegment(self, subsegment: Any) -> None:
        pass

    def remove_subsegment(self, subsegment: Any) -> None:
        pass

    def put_annotation(self, key: str, value: Any) -> None:
        pass

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        pass

    def add_exception(self, exception: BaseException, stack: Any, remote: bool = False) -> None:
        pass


class _NoTracing(BaseProvider):
    """A tracing provider that records nothing (tracing is off)."""

    @contextmanager
    def in_subsegment(self, name: Any = None, **kwargs: Any) -> Iterator[BaseSegment]:
        yield _NoSegment()

    @asynccontextmanager
    async def in_subsegment_async(self, name: Any = None, **kwargs: Any) -> AsyncIterator[BaseSegment]:
        yield _NoSegment()

    def put_annotation(self, key: str, value: Any) -> None:
        pass

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        pass

    def patch(self, modules: Sequence[str]) -> None:
        pass

    def patch_all(self) -> None:
        pass


def error_fingerprint(error: BaseException) -> dict[str, Any]:
    frames = traceback.extract_tb(error.__traceback__)
    return {
        "error_type": type(error).__name__,
        "frames": [f"{frame.filename.rsplit('/', 2)[-1]}:{frame.lineno} {frame.name}" for frame in frames[-8:]],
    }


def log_unexpected(logger: Any, error: BaseException, what: str) -> None:
    logger.error(what, extra=error_fingerprint(error))
