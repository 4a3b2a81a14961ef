"""The JSON API's routes, one Powertools router per resource (profiles, requests, imports)."""

from selfservice.api_routes import imports, profiles, requests

ROUTERS = [profiles.router, requests.router, imports.router]
