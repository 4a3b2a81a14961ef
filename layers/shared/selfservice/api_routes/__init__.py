"""The JSON API's routes, one Powertools router per resource (profiles, requests)."""

from selfservice.api_routes import profiles, requests

ROUTERS = [profiles.router, requests.router]
