"""The short session a link is exchanged for, and the CSRF token every form carries.

A link token (30 days) is exchanged once for a signed session cookie (one hour, HttpOnly,
SameSite=Lax) so the token leaves the address bar and browser history. The session carries the
profile's token version: "sign out on all devices" bumps it and every older session dies.
The CSRF token is derived from a random nonce inside the session, so a form from another site
cannot guess it; pages without a session (the new-link form) use a double-submit cookie.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer

SESSION_COOKIE = "ss_session"
ANONYMOUS_CSRF_COOKIE = "ss_csrf"
SESSION_LIFETIME = dt.timedelta(hours=1)


@dataclass(frozen=True)
class Session:
    profile_id: str
    token_version: int
    nonce: str

    @property
    def csrf_token(self) -> str:
        return hashlib.sha256(f"csrf:{self.nonce}".encode()).hexdigest()

    def accepts(self, submitted: str | None) -> bool:
        return bool(submitted) and _same(self.csrf_token, str(submitted))


class SessionCodec:
    def __init__(self, secrets_newest_last: list[str]) -> None:
        self._serializer = URLSafeTimedSerializer(secrets_newest_last, salt="selfservice.session")

    def new(self, profile_id: str, token_version: int) -> tuple[Session, str]:
        session = Session(profile_id, token_version, secrets.token_urlsafe(16))
        return session, self._serializer.dumps({"p": profile_id, "v": token_version, "n": session.nonce})

    def read(self, cookie_value: str | None) -> Session | None:
        if not cookie_value:
            return None
        try:
            payload = self._serializer.loads(cookie_value, max_age=int(SESSION_LIFETIME.total_seconds()))
        except BadSignature:
            return None
        if not isinstance(payload, dict):
            return None
        profile_id, version, nonce = payload.get("p"), payload.get("v"), payload.get("n")
        if not isinstance(profile_id, str) or not isinstance(version, int) or not isinstance(nonce, str):
            return None
        return Session(profile_id, version, nonce)


def _same(expected: str, submitted: str) -> bool:
    """Constant-time comparison of any two strings (``hmac.compare_digest`` refuses non-ASCII ones)."""
    return hmac.compare_digest(expected.encode("utf-8", "surrogatepass"), submitted.encode("utf-8", "surrogatepass"))


def anonymous_csrf_ok(cookie_value: str | None, submitted: str | None) -> bool:
    """Double-submit check for forms shown without a session."""
    return bool(cookie_value) and bool(submitted) and _same(str(cookie_value), str(submitted))


def new_anonymous_csrf() -> str:
    return secrets.token_urlsafe(24)
