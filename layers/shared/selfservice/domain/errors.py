"""Domain exceptions; handlers map them to HTTP answers, storage translates ClientError into them."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error the domain or storage raises on purpose."""


class NotFound(DomainError):
    """The profile (or item) does not exist — or no longer exists."""


class AlreadyExists(DomainError):
    """A profile with this (normalised) email address already exists."""


class VersionConflict(DomainError):
    """The profile was changed since the caller read it (optimistic locking)."""

    def __init__(self, expected: int, current: int | None = None) -> None:
        super().__init__(f"profile version {expected} is stale" + (f"; current is {current}" if current else ""))
        self.expected = expected
        self.current = current


class InvalidInput(DomainError):
    """A value breaks a catalog or domain rule; ``field`` is the path of the wrong value."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class TemporarilyUnavailable(DomainError):
    """A dependency is throttling or down; the caller may retry later."""
