"""Where links in emails point when ``PUBLIC_BASE_URL`` is empty: the domain a request came in through.

The two functions behind the HTTP API cannot be given the API's URL in their environment (the API
references them, so the reference back would be a circular dependency in the template). Without a
custom domain or an explicit ``PublicBaseUrl`` their ``PUBLIC_BASE_URL`` is therefore empty, and the
links they send point at the domain of the request that caused the email: API Gateway's
``requestContext.domainName`` (the execute-api host, or a custom domain mapped to the API). API
Gateway sets that value itself, unlike the Host header, so a client cannot steer links elsewhere.
Functions that are not behind the API (the review campaigns) always get the URL from the template.
"""

from __future__ import annotations

import re

from selfservice.settings import Settings

# A DNS name, optionally with a port (the local stack serves on 127.0.0.1:3000).
_DOMAIN_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(?::[0-9]{1,5})?")


def for_request(settings: Settings, domain_name: str | None) -> Settings:
    """``settings`` as they are when ``public_base_url`` is set, else with ``https://<domain_name>``."""
    if settings.public_base_url or not domain_name or not _DOMAIN_NAME.fullmatch(domain_name):
        return settings
    return settings.model_copy(update={"public_base_url": f"https://{domain_name}"})
