"""Logging an unexpected error without personal data.

Exception messages may carry what a customer typed (an address, a name), so only the exception's
type and where it happened (file, line, function) are logged — enough to find the bug.
"""

from __future__ import annotations

import traceback
from typing import Any


def error_fingerprint(error: BaseException) -> dict[str, Any]:
    frames = traceback.extract_tb(error.__traceback__)
    return {
        "error_type": type(error).__name__,
        "frames": [f"{frame.filename.rsplit('/', 2)[-1]}:{frame.lineno} {frame.name}" for frame in frames[-8:]],
    }


def log_unexpected(logger: Any, error: BaseException, what: str) -> None:
    logger.error(what, extra=error_fingerprint(error))
