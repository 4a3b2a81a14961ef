"""Content negotiation for documents served both as JSON and as a page: the media type and the language."""

from __future__ import annotations

from selfservice.web.render import LANGUAGES


def weighted(header: str) -> list[tuple[str, float]]:
    """The entries of an Accept-style header with their q-value (RFC 9110; 1 without one, 0 if unreadable),
    in header order."""
    entries = []
    for part in header.split(","):
        kind, *parameters = (piece.strip() for piece in part.split(";"))
        weight = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if kind:
            entries.append((kind, weight))
    return entries


def _ranked(header: str) -> dict[str, float]:
    ranks: dict[str, float] = {}
    for kind, weight in weighted(header):
        ranks[kind.lower()] = max(weight, ranks.get(kind.lower(), 0.0))
    return ranks


def wants_html(accept: str) -> bool:
    """True when ``Accept`` prefers ``text/html`` to ``application/json`` (RFC 9110 q-values); JSON on
    a tie, without the header or for anything else (the API's own media type)."""
    ranks = _ranked(accept)
    html = ranks.get("text/html", ranks.get("text/*", 0.0))
    json = ranks.get("application/json", ranks.get("application/*", ranks.get("*/*", 0.0)))
    return html > json


def preferred_language(accept_language: str, default: str) -> str:
    """The first of the page languages ``Accept-Language`` accepts, else ``default`` (Babel is imported
    here, when a page is asked for: most API requests never are)."""
    from babel import negotiate_locale

    from selfservice.web.pages import accepted_languages

    return negotiate_locale(accepted_languages(accept_language), LANGUAGES, sep="-", aliases={}) or default
