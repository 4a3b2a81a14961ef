"""Signed, purpose-scoped, expiring tokens for links in emails (itsdangerous).

A token carries the profile id and the profile's token version; bumping the version in the
profile revokes every older link. Secrets are a list, newest last: during key rotation the
previous key still verifies while new tokens are signed with the newest.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

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


class TokenSigner:
    def __init__(self, secrets: list[str]) -> None:
        if not secrets or not all(secrets):
            raise ValueError("at least one non-empty signing secret is needed")
        self._secrets = secrets

    def _serializer(self, purpose: Purpose) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self._secrets, salt=f"selfservice.{purpose.value}")

    def issue(self, profile_id: str, token_version: int, purpose: Purpose) -> str:
        return self._serializer(purpose).dumps({"p": profile_id, "v": token_version})

    def verify(self, token: str, purpose: Purpose) -> tuple[str, int]:
        """Return (profile id, token version) or raise; the caller compares the version with the profile's."""
        try:
            payload = self._serializer(purpose).loads(token, max_age=int(LIFETIMES[purpose].total_seconds()))
        except SignatureExpired:
            raise ExpiredToken(purpose.value) from None
        except BadSignature:
            raise InvalidToken(purpose.value) from None
        if (
            not isinstance(payload, dict)
            or not isinstance(payload.get("p"), str)
            or not isinstance(payload.get("v"), int)
        ):
            raise InvalidToken(purpose.value)
        return payload["p"], payload["v"]
