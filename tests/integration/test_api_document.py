"""The JSON API's OpenAPI document says what the API answers: each status an operation can give, with
the body the API really sends; and every answer under /api/ carries the service's security headers."""

from __future__ import annotations

import json

import pytest

from selfservice.security_headers import TRANSPORT_SECURITY
from selfservice.storage import ProfileRepository

PROFILE = "/api/profiles/{profile_id}"
REQUEST = "/api/requests/{request_id}"
GATEWAY = {403, 429}
"""Answered by API Gateway, not the function: IAM refused the call, or the route's rate was exceeded."""
ANY_OPERATION = {*GATEWAY, 500, 503}
EXPECTED = {
    ("post", "/api/profiles"): {201, 400, 409, 413, 415, 422},
    ("get", "/api/profiles"): {200, 404, 422},
    ("get", PROFILE): {200, 404, 422},
    ("patch", PROFILE): {200, 400, 404, 409, 412, 413, 415, 422},
    ("delete", PROFILE): {200, 404, 422},
    ("get", f"{PROFILE}/history"): {200, 404, 422},
    ("post", f"{PROFILE}/self-service-link"): {202, 400, 404, 413, 415, 422},
    ("get", f"{PROFILE}/consent-proof"): {200, 404, 422},
    ("post", f"{PROFILE}/consent-proof/check"): {200, 400, 404, 413, 415, 422},
    ("get", "/api/openapi.json"): {200},
    ("get", "/api/requests"): {200, 422},
    ("get", REQUEST): {200, 404, 422},
    ("patch", REQUEST): {200, 400, 404, 409, 412, 413, 415, 422},
    ("get", "/api/topics/{topic}/audience"): {200, 404, 422},
    ("post", "/api/audience-exports"): {202, 400, 404, 413, 415, 422},
    ("get", "/api/audience-exports/{export_id}"): {200, 404, 422},
    ("post", "/api/imports"): {200, 400, 413, 415, 422},
    ("post", "/api/import-jobs"): {201, 400, 413, 415, 422},
    ("post", "/api/import-jobs/{job_id}/start"): {202, 400, 404, 409, 413, 415, 422},
    ("get", "/api/import-jobs/{job_id}"): {200, 404, 422},
}
PROBLEM = {"$ref": "#/components/schemas/Problem"}
GATEWAY_ERROR = {"$ref": "#/components/schemas/GatewayError"}


@pytest.fixture
def document(stack):
    answer = stack.request("GET", "/api/openapi.json")
    assert answer.status == 200
    return answer.json


def operations(document):
    return {(method, path): operation for path, item in document["paths"].items() for method, operation in item.items()}


def test_every_operation_declares_each_status_it_can_answer(document):
    declared = {
        key: {int(status) for status in operation["responses"]} for key, operation in operations(document).items()
    }
    assert declared == {key: statuses | ANY_OPERATION for key, statuses in EXPECTED.items()}


def test_every_error_is_declared_with_the_problem_the_api_sends(document):
    for (method, path), operation in operations(document).items():
        for status, response in operation["responses"].items():
            schema = response["content"]["application/json"]["schema"]
            where = f"{method.upper()} {path} {status}"
            if int(status) < 400:
                assert schema != PROBLEM, where
            elif int(status) in GATEWAY:
                assert schema == GATEWAY_ERROR, where
            elif int(status) >= 500:
                assert schema["anyOf"] == [PROBLEM, GATEWAY_ERROR], where
            else:
                assert schema == PROBLEM, where
    schemas = document["components"]["schemas"]
    assert schemas["Problem"]["required"] == ["error", "message"]
    assert set(schemas["Problem"]["properties"]) == {"error", "message", "problems"}
    assert schemas["Problem"]["additionalProperties"] is False
    assert set(schemas["FieldProblem"]["required"]) == {"field", "reason"}
    text = json.dumps(document)
    assert "HTTPValidationError" not in text, "no body the API never sends"
    assert '"detail"' not in text


def test_declared_headers_are_sent(stack, document):
    created = stack.request("POST", "/api/profiles", {"email": "kim@example.com"})
    declared = operations(document)[("post", "/api/profiles")]["responses"]["201"]["headers"]
    assert set(declared) == {"ETag", "Location"}
    assert created.headers["ETag"] == '"1"'
    assert created.headers["Location"] == f"/api/profiles/{created.json['id']}"
    unsupported = operations(document)[("patch", PROFILE)]["responses"]["415"]["headers"]
    assert set(unsupported) == {"Accept", "Accept-Patch"}


def test_problems_the_api_sends_have_the_declared_shape(stack):
    profile = stack.request("POST", "/api/profiles", {"email": "kim@example.com"}).json["id"]
    answers = [
        stack.request("POST", "/api/profiles", raw="{"),
        stack.request("POST", "/api/profiles", raw=b"\xff"),
        stack.request("GET", f"/api/profiles/{'0' * 32}"),
        stack.request("POST", "/api/profiles", {"email": "KIM@example.com"}),
        stack.request("PATCH", f"/api/profiles/{profile}", {"locale": "en"}, headers={"If-Match": '"7"'}),
        stack.request("POST", "/api/profiles", raw="x" * 20_000),
        stack.request("POST", "/api/profiles", raw="<a/>", headers={"content-type": "application/xml"}),
        stack.request("POST", "/api/profiles", {"email": 42}),
    ]
    assert [answer.status for answer in answers] == [400, 400, 404, 409, 412, 413, 415, 422]
    for answer in answers:
        body = answer.json
        assert {"error", "message"} <= set(body) <= {"error", "message", "problems"}, answer.text
        assert isinstance(body["error"], str)
        assert isinstance(body["message"], str)
        for problem in body.get("problems", []):
            assert set(problem) == {"field", "reason"}


@pytest.fixture
def broken_storage(monkeypatch):
    def explode(self, profile_id):
        raise RuntimeError("a bug")

    monkeypatch.setattr(ProfileRepository, "get", explode)


def test_every_api_answer_carries_the_security_headers_the_pages_carry(stack, broken_storage):
    answers = {
        "document": stack.request("GET", "/api/openapi.json"),
        "created": stack.request("POST", "/api/profiles", {"email": "kim@example.com"}),
        "invalid": stack.request("POST", "/api/profiles", {"email": 42}),
        "unreadable": stack.request("POST", "/api/profiles", raw=b"\xff"),
        "unsupported": stack.request("POST", "/api/profiles", raw="a", headers={"content-type": "text/plain"}),
        "too large": stack.request("POST", "/api/profiles", raw="x" * 20_000),
        "no route": stack.request("GET", "/api/nothing-here"),
        "bug": stack.request("GET", f"/api/profiles/{'a' * 32}"),
    }
    assert [answer.status for answer in answers.values()] == [200, 201, 422, 400, 415, 413, 404, 500]
    page = stack.client.get("/new-link")
    for name, answer in answers.items():
        for header, value in TRANSPORT_SECURITY.items():
            assert answer.headers.get(header) == value, f"{name}: {header}"
            assert page.headers[header] == value
    assert TRANSPORT_SECURITY["X-Content-Type-Options"] == "nosniff"
    assert TRANSPORT_SECURITY["Strict-Transport-Security"].startswith("max-age=")
