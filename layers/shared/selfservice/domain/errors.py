"""Domain exceptions; handlers map them to HTTP answers, storage translates ClientError into them."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error the domain or storage raises on purpose."""


class NotFound(DomainError):
    """The profile (or item) does not exist — or no longer exists; ``what`` names the kind."""

    def __init__(self, key: object = "", what: str = "profile") -> None:
        super().__init__(key)
        self.what = what


class AlreadyExists(DomainError):
    """A profile with this (normalised) email address already exists."""


class VersionConflict(DomainError):
    """The profile was changed since the caller read it (optimistic locking)."""

    def __init__(self, expected: int, current: int | None = None) -> None:
        super().__init__(f"profile version {expected} is stale" + (f"; current is {current}" if current else ""))
        self.expected = expected
        self.current = current


class InvalidInput(DomainError):
    """A value breaks a catalog or domain rule; ``field`` is the path of the wrong value.

    ``reason`` is a fixed English sentence with ``{placeholders}`` filled from ``params``, so the
    pages can translate it (it is the message id) and the API can show :attr:`message`.
    """

    def __init__(self, field: str, reason: str, **params: object) -> None:
        self.field = field
        self.reason = reason
        self.params = params
        super().__init__(f"{field}: {self.message}")

    @property
    def message(self) -> str:
        return self.reason.format(**self.params) if self.params else self.reason


class MissingFields(DomainError):
    """Confirming "everything is correct" while required fields are empty: they come first."""

    def __init__(self, fields: list[str]) -> None:
        super().__init__("missing: " + ", ".join(fields))
        self.fields = fields


class RequestClosed(DomainError):
    """A closed request takes no further change (a new question is a new request)."""

    def __init__(self, request_id: str) -> None:
        super().__init__(request_id)
        self.request_id = request_id


class NothingUploaded(DomainError):
    """An import job was started before its file was uploaded."""


class TemporarilyUnavailable(DomainError):
    """A dependency is throttling or down; the caller may retry later."""
