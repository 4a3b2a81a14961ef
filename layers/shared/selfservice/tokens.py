"""Signed, purpose-scoped, expiring tokens for links in emails (itsdangerous).

A token carries the profile id and the profile's token version; bumping the version in the
profile revokes every older link. Secrets are a list, newest last: during key rotation the
previous key still verifies while new tokens are signed with the newest.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import NamedTuple

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer


class Purpose(StrEnum):
    MANAGE = "manage"
    CONFIRM = "confirm"
    UNSUBSCRIBE = "unsubscribe"


LIFETIMES: dict[Purpose, dt.timedelta] = {
    Purpose.MANAGE: dt.timedelta(days=30),
    Purpose.CONFIRM: dt.timedelta(hours=48),
    Purpose.UNSUBSCRIBE: dt.timedelta(days=365),
}


class InvalidToken(Exception):
    """Tampered, malformed, signed for another purpose, or revoked."""


class ExpiredToken(InvalidToken):
    """Genuine but older than its purpose allows."""


class Claims(NamedTuple):
    """What a token says: whose it is, the profile's token version, and (a confirmation of a
    subscription kept aside for an existing profile) which request it confirms."""

    profile_id: str
    token_version: int
    request: str | None = None


class TokenSigner:
    def __init__(self, secrets: list[str]) -> None:
        if not secrets or not all(secrets):
            raise ValueError("at least one non-empty signing secret is needed")
        self._secrets = secrets

    def mac_keys(self) -> list[str]:
        """The secrets as keys for other MACs (e.g. SMS codes), newest first: new ones use the first,
        checks accept any (a rotation does not break what was made just before it)."""
        return list(reversed(self._secrets))

    def _serializer(self, purpose: Purpose) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self._secrets, salt=f"selfservice.{purpose.value}")

    def issue(self, profile_id: str, token_version: int, purpose: Purpose, *, request: str | None = None) -> str:
        payload: dict[str, str | int] = {"p": profile_id, "v": token_version}
        if request is not None:
            payload["r"] = request
        return self._serializer(purpose).dumps(payload)

    def verify(self, token: str, purpose: Purpose) -> tuple[str, int]:
        """Return (profile id, token version) or raise; the caller compares the version with the profile's."""
        claims = self.claims(token, purpose)
        return claims.profile_id, claims.token_version

    def claims(self, token: str, purpose: Purpose) -> Claims:
        """Everything the token says, or InvalidToken/ExpiredToken."""
        try:
            payload = self._serializer(purpose).loads(token, max_age=int(LIFETIMES[purpose].total_seconds()))
        except SignatureExpired:
            raise ExpiredToken(purpose.value) from None
        except (BadSignature, UnicodeError):  # UnicodeError: a token that is no text a link can carry
            raise InvalidToken(purpose.value) from None
        if (
            not isinstance(payload, dict)
            or not isinstance(payload.get("p"), str)
            or not isinstance(payload.get("v"), int)
            or not isinstance(payload.get("r", ""), str)
        ):
            raise InvalidToken(purpose.value)
        return Claims(payload["p"], payload["v"], payload.get("r"))
