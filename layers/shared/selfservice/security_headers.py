"""Headers every response of the service carries, the pages' and the JSON API's alike."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

TRANSPORT_SECURITY: Mapping[str, str] = MappingProxyType(
    {
        # HTTPS only, for two years, subdomains included (a browser never tries plain HTTP again).
        "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
        # A response is what its Content-Type says: no browser guesses a JSON or HTML answer into a script.
        "X-Content-Type-Options": "nosniff",
    }
)
