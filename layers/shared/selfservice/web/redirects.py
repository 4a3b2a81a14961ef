"""Where a page may send the browser next: only the site's own pages, never another origin.

``/link?next=…`` (a link from an email) and ``POST /language`` (``back=…``) take a target from
the request. A prefix check is not enough: browsers drop tabs and newlines from a URL and read
``\\`` as ``/``, so ``/\\t/evil.example`` or ``/\\evil.example`` leave the site, and a CR or LF in a
header is a broken response. A target is therefore looked up, never cleaned up: its path must be
one of :data:`TARGETS`, and only that page's own query parameters are kept, each only with a value
made of the characters its tokens, field lists and flags use. The target is then rebuilt from
those parts, so what goes into ``Location`` is always one of the strings built here. Anything else
is the overview.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode

HOME = "/"

TARGETS: dict[str, frozenset[str]] = {
    "/": frozenset({"saved", "confirmed", "welcome"}),
    "/profile": frozenset({"saved", "focus"}),
    "/communication": frozenset({"saved"}),
    "/services": frozenset({"saved"}),
    "/requests": frozenset({"sent"}),
    "/history": frozenset(),
    "/privacy": frozenset(),
    "/privacy/delete": frozenset(),
    "/review": frozenset(),
    "/new-link": frozenset(),
    "/subscribe": frozenset(),
    "/confirm": frozenset({"token"}),
    "/unsubscribe": frozenset({"token"}),
    "/unsubscribe/one-click": frozenset({"token"}),
    "/accessibility": frozenset({"sent"}),
}
"""Pages a GET may be sent to, each with the query parameters it reads. (Not ``/link``: it answers
with a redirect itself; not the download ``/privacy/export``; no page that only answers a POST.)"""

_SAFE_VALUE = re.compile(r"[A-Za-z0-9._,-]{1,1000}")
"""Signed tokens (URL-safe base64 and dots), ``focus`` field lists (ids and commas), flags."""


def safe_next(target: str | None) -> str:
    """``target`` rebuilt from its allowed parts if it is one of this site's pages, else the overview."""
    if not target or len(target) > 2000:
        return HOME
    path, _, query = target.partition("?")
    allowed = TARGETS.get(path)
    if allowed is None:
        return HOME
    try:
        pairs = parse_qsl(query, keep_blank_values=False, strict_parsing=False, max_num_fields=20)
    except ValueError:
        return path
    kept = [(name, value) for name, value in pairs if name in allowed and _SAFE_VALUE.fullmatch(value)]
    return f"{path}?{urlencode(kept, safe=',')}" if kept else path
