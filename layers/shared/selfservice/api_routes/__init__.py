"""The JSON API's routes, one Powertools router per resource (profiles, requests, audiences, imports)."""

from selfservice.api_routes import audience, imports, profiles, requests

ROUTERS = [profiles.router, requests.router, audience.router, imports.router]
