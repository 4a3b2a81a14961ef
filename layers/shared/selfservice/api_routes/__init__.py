"""The JSON API's routes, one Powertools router per resource (profiles, requests, audiences)."""

from selfservice.api_routes import audience, profiles, requests

ROUTERS = [profiles.router, requests.router, audience.router]
