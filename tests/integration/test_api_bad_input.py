"""Bad input gets a clear 4xx naming the problem, never a 500, and leaves the table unchanged."""

from __future__ import annotations

import pytest

PROFILE = "{id}"
LONG = "x" * 3000

# (method, path, body or raw text, headers) — 50 malformed requests of every kind.
MALFORMED: list[tuple[str, str, object, dict[str, str]]] = [
    # broken JSON
    ("POST", "/api/profiles", '{"email": ', {}),
    ("POST", "/api/profiles", "not json at all", {}),
    ("POST", "/api/profiles", '{"email": "a@b.de",}', {}),
    ("PATCH", f"/api/profiles/{PROFILE}", '{"fields": {"city": "Berlin"}', {}),
    ("PATCH", f"/api/profiles/{PROFILE}", "[1, 2", {}),
    # wrong types
    ("POST", "/api/profiles", {"email": 42}, {}),
    ("POST", "/api/profiles", {"email": ["a@b.de"]}, {}),
    ("POST", "/api/profiles", [], {}),
    ("POST", "/api/profiles", "null", {}),
    ("POST", "/api/profiles", {"email": "kim2@example.com", "locale": 7}, {}),
    ("PATCH", f"/api/profiles/{PROFILE}", {"fields": "city=Berlin"}, {}),
    ("PATCH", f"/api/profiles/{PROFILE}", {"fields": {"city": {"name": "Berlin"}}}, {}),
    ("PATCH", f"/api/profiles/{PROFILE}", {"preferences": {"topics": {"news": "yes please"}}}, {}),
    ("PATCH", f"/api/profiles/{PROFILE}", {"preferences": {"topics": ["news"]}}, {}),
    ("PATCH", f"/api/profiles/{PROFILE}", {"preferences": {"channels": {"offers": "email"}}}, {}),
    ("PATCH", f"/api/profiles/{PROFILE}", {"preferences": {"paused_until": "next week"}}, {}),
    ("PATCH", f"/api/profiles/{PROFILE}", {"services": {"delivery_plus": 1}}, {}),
    ("PATCH", f"/api/profiles/{PROFILE}", {"version": "one"}, {}),
    ("PATCH", f"/api/profiles/{PROFILE}", {"version": 0}, {}),
    ("GET", "/api/profiles/{id}/history?limit=lots", None, {}),
    # unknown fields, topics, services, options, values
    ("POST", "/api/profiles", {"email": "kim2@example.com", "is_admin": True}, {}),
    ("POST", "/api/profiles", {"email": "kim2@example.com", "fields": {"shoe_size": "44"}}, {}),
    ("POST", "/api/profiles", {"email": "kim2@example.com", "preferences": {"topics": {"crypto": True}}}, {}),
    ("PATCH", f"/api/profiles/{PROFILE}", {"nickname": "K"}, {}),
    ("PATCH", f"/api/profiles/{PROFILE}", {"fields": {"shoe_size": "44"}}, {}),
    ("PATCH", f"/api/profiles/{PROFILE}", {"preferences": {"topics": {"crypto": True}}}, {}),
    ("PATCH", f"/api/profiles/{PROFILE}", {"preferences": {"topics": {"partner_offers": True}}}, {}),
    ("PATCH", f"/api/profiles/{PROFILE}", {"preferences": {"frequency": "hourly"}}, {}),
    ("PATCH", f"/api/profiles/{PROFILE}", {"preferences": {"channels": {"news": ["sms"]}}}, {}),
    ("PATCH", f"/api/profiles/{PROFILE}", {"preferences": {"channels": {"offers": ["pigeon"]}}}, {}),
    ("PATCH", f"/api/profiles/{PROFILE}", {"preferences": {"channels": {"offers": ["sms"]}}}, {}),
    ("PATCH", f"/api/profiles/{PROFILE}", {"preferences": {"mood": "happy"}}, {}),
    ("PATCH", f"/api/profiles/{PROFILE}", {"services": {"spaceflight": "economy"}}, {}),
    ("PATCH", f"/api/profiles/{PROFILE}", {"services": {"delivery_plus": "weekly"}}, {}),
    ("PATCH", f"/api/profiles/{PROFILE}", {"services": {"birthday_club": "member"}}, {}),
    ("PATCH", f"/api/profiles/{PROFILE}", {"fields": {"salutation": "king"}}, {}),
    ("PATCH", f"/api/profiles/{PROFILE}", {"fields": {"birthday": "31.02.1990"}}, {}),
    ("PATCH", f"/api/profiles/{PROFILE}", {"fields": {"phone": "call me"}}, {}),
    ("PATCH", f"/api/profiles/{PROFILE}", {"preferences": {"paused_until": "2001-01-01T00:00:00Z"}}, {}),
    # oversized strings and bodies
    ("POST", "/api/profiles", {"email": "a" * 250 + "@example.com"}, {}),
    ("PATCH", f"/api/profiles/{PROFILE}", {"fields": {"city": LONG}}, {}),
    ("PATCH", f"/api/profiles/{PROFILE}", {"fields": {"first_name": "x" * 81}}, {}),
    ("PATCH", f"/api/profiles/{PROFILE}", {"fields": {"city": "y" * 20_000}}, {}),
    ("PATCH", f"/api/profiles/{PROFILE}", {"fields": {f"f{n}": "v" for n in range(65)}}, {}),
    # invalid email
    ("POST", "/api/profiles", {"email": "no-at-sign"}, {}),
    ("POST", "/api/profiles", {"email": "two@@example.com"}, {}),
    ("POST", "/api/profiles", {"email": "spaces in@example.com"}, {}),
    ("PATCH", f"/api/profiles/{PROFILE}", {"email": "kim@"}, {}),
    # bad identifiers and headers
    ("GET", "/api/profiles/not-a-profile-id", None, {}),
    ("PATCH", f"/api/profiles/{PROFILE}", {"locale": "en"}, {"If-Match": "yesterday"}),
]


def test_there_are_fifty_malformed_requests():
    assert len(MALFORMED) == 50


@pytest.fixture
def existing(stack):
    answer = stack.request("POST", "/api/profiles", {"email": "kim@example.com", "fields": {"city": "Berlin"}})
    assert answer.status == 201
    return answer.json["id"]


def test_each_malformed_request_gets_a_4xx_naming_the_problem_and_changes_nothing(stack, existing):
    before = stack.items()
    outcomes = []
    for method, template_path, body, headers in MALFORMED:
        path, _, raw_query = template_path.replace(PROFILE, existing).partition("?")
        query = dict(pair.split("=", 1) for pair in raw_query.split("&")) if raw_query else None
        raw = body if isinstance(body, str) else None
        answer = stack.request(method, path, None if raw is not None else body, raw=raw, headers=headers, query=query)
        outcomes.append((method, path, answer))
        assert 400 <= answer.status < 500, f"{method} {path} {body!r:.80} -> {answer.status} {answer.text[:200]}"
        payload = answer.json
        assert payload["error"]
        assert payload["message"]
        if answer.status in (400, 422, 413):
            assert payload["problems"], f"{method} {path}: the problem must name the field"
            assert all(problem["field"] and problem["reason"] for problem in payload["problems"])
        assert "Traceback" not in answer.text
    assert stack.items() == before, "a refused request must store nothing"
    assert stack.sent_emails() == []
    statuses = {answer.status for _, _, answer in outcomes}
    assert statuses <= {400, 404, 409, 412, 413, 422}
    assert {400, 413, 422} <= statuses, "broken JSON, an oversized body and wrong values each have their own answer"


def test_problem_names_the_exact_field(stack, existing):
    answer = stack.request("PATCH", f"/api/profiles/{existing}", {"preferences": {"topics": {"crypto": True}}})
    assert answer.status == 422
    assert answer.json["problems"] == [{"field": "preferences.topics.crypto", "reason": "unknown topic"}]
    answer = stack.request("POST", "/api/profiles", {"email": 42})
    assert answer.status == 422
    assert answer.json["problems"][0]["field"] == "body.email"
    assert stack.request("PATCH", f"/api/profiles/{existing}", raw='{"fields": ').status == 400


def test_submitted_values_are_not_echoed_in_errors(stack, existing):
    secret = "<script>alert(1)</script>-very-personal"
    answer = stack.request("PATCH", f"/api/profiles/{existing}", {"fields": {"phone": secret}})
    assert answer.status == 422
    assert secret not in answer.text


# What the API reads: JSON in UTF-8, nested at most 32 deep, versions in If-Match. Whatever else
# arrives is a 4xx naming the problem, never a 500, and nothing is stored or sent.


def refused(stack, answer, status, error, field):
    """``answer`` is the JSON problem ``status``/``error`` naming ``field``, without a stack trace."""
    assert answer.status == status, f"{answer.status} {answer.text[:300]}"
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json["error"] == error
    assert answer.json["message"]
    assert [problem["field"] for problem in answer.json["problems"]] == [field]
    assert "Traceback" not in answer.text


def test_a_body_that_is_not_utf8_is_a_400(stack, existing):
    before = stack.items()
    latin1 = '{"email": "jörg@example.com"}'.encode("latin-1")
    refused(stack, stack.request("POST", "/api/profiles", raw=latin1), 400, "invalid_encoding", "body")
    broken = b'{"fields": {"city": "\xff\xfe Berlin"}}'
    refused(stack, stack.request("PATCH", f"/api/profiles/{existing}", raw=broken), 400, "invalid_encoding", "body")
    assert stack.items() == before
    assert stack.sent_emails() == []


@pytest.mark.parametrize(
    "content_type",
    [
        "APPLICATION/JSON",
        "application/json; charset=utf-8",
        "Application/Json;Charset=UTF-8",
        'application/json; charset="utf-8"',
        " application/json ",
    ],
)
def test_json_is_read_whatever_case_its_media_type_is_written_in(stack, content_type):
    answer = stack.request(
        "POST", "/api/profiles", {"email": "kim@example.com"}, headers={"content-type": content_type}
    )
    assert answer.status == 201, answer.text
    assert stack.request("GET", "/api/profiles", query={"email": "kim@example.com"}).json["id"] == answer.json["id"]


BODY_TYPES_NOT_READ = [
    "text/plain",
    "text/plain; charset=utf-8",
    "application/xml",
    "application/merge-patch+json",
    "application/json-patch+json",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=xyz",
    "application/octet-stream",
    "application/json; charset=iso-8859-1",
    "application/jsonx",
]


@pytest.mark.parametrize("content_type", BODY_TYPES_NOT_READ)
def test_a_body_of_another_media_type_is_a_415_saying_what_is_read(stack, existing, content_type):
    before = stack.items()
    body = '{"email": "kim2@example.com", "fields": {"city": "Leipzig"}}'
    created = stack.request("POST", "/api/profiles", raw=body, headers={"content-type": content_type})
    refused(stack, created, 415, "unsupported_media_type", "Content-Type")
    assert created.headers["Accept"] == "application/json"
    assert "Accept-Patch" not in created.headers
    changed = stack.request("PATCH", f"/api/profiles/{existing}", raw=body, headers={"content-type": content_type})
    refused(stack, changed, 415, "unsupported_media_type", "Content-Type")
    assert changed.headers["Accept"] == "application/json"
    assert changed.headers["Accept-Patch"] == "application/json"
    assert stack.items() == before
    assert stack.sent_emails() == []


def test_the_body_limit_counts_bytes_however_the_body_is_sent(stack, existing):
    before = stack.items()
    wide = '{"fields": {"city": "' + "ü" * 8_500 + '"}}'  # under 16 Ki characters, over 16 KiB in UTF-8
    refused(stack, stack.request("PATCH", f"/api/profiles/{existing}", raw=wide), 413, "body_too_large", "body")
    binary = b"\xff" * 16_000  # not UTF-8: the gateway passes it base64-encoded, a third longer, yet within the limit
    refused(stack, stack.request("PATCH", f"/api/profiles/{existing}", raw=binary), 400, "invalid_encoding", "body")
    refused(stack, stack.request("PATCH", f"/api/profiles/{existing}", raw=binary * 2), 413, "body_too_large", "body")
    assert stack.items() == before


def nested(depth: int) -> str:
    return '{"fields": {"city": ' + "[" * depth + "]" * depth + "}}"


@pytest.mark.parametrize("depth", [31, 5_000, 100_000])
def test_json_nested_deeper_than_32_levels_is_a_400_without_recursion(stack, existing, depth):
    before = stack.items()
    answer = stack.request("PATCH", f"/api/profiles/{existing}", raw=nested(depth))  # 2 + depth levels
    assert answer.status in (400, 413)
    if answer.status == 400:
        refused(stack, answer, 400, "too_deep", "body")
    created = stack.request("POST", "/api/profiles", raw='{"email": "kim2@example.com", "x": ' + "[" * depth + "}")
    assert created.status in (400, 413)
    assert stack.items() == before


def test_json_nested_32_levels_is_read_and_brackets_in_strings_do_not_count(stack, existing):
    answer = stack.request("PATCH", f"/api/profiles/{existing}", raw=nested(30))  # 32 levels: read
    assert answer.status == 422, answer.text  # and refused for what it says
    assert answer.json["error"] == "invalid_request"
    city = "[{" * 30 + "Berlin"
    answer = stack.request("PATCH", f"/api/profiles/{existing}", {"fields": {"city": city}})
    assert answer.status == 200, answer.text
    assert answer.json["fields"]["city"]["value"] == city


@pytest.mark.parametrize("number", ["9" * 5_000, "-" + "1" * 4_301])
def test_a_number_longer_than_python_reads_is_a_400(stack, existing, number):
    before = stack.items()
    answer = stack.request("PATCH", f"/api/profiles/{existing}", raw=f'{{"version": {number}}}')
    refused(stack, answer, 400, "invalid_json", "body")
    answer = stack.request("POST", "/api/profiles", raw=f'{{"email": "kim2@example.com", "x": [{number}]}}')
    refused(stack, answer, 400, "invalid_json", "body")
    assert stack.items() == before


# If-Match is "*" or a list of entity tags (RFC 9110). The profile's ETag is strong ("1"); a weak tag,
# or one that is no version, never matches it: 412. What is no list of entity tags is a 400.
IF_MATCH_NEVER_MATCHES = [
    '"²"',
    '"٣"',
    '"¹"',
    '"01"',
    '"1.0"',
    'W/"1"',
    '"v1"',
    '""',
    '"9" , "²"',
    "",
    '"1' + "0" * 40 + '"',
]
IF_MATCH_MALFORMED = [
    "²",
    "1",
    '" 1"',
    "yesterday",
    '"1',
    '1"',
    '"1" "2"',
    'w/"1"',
    "W/1",
    "**",
    '"1";',
    '"a"b"',
    '*, "1"',
]


@pytest.mark.parametrize("if_match", IF_MATCH_NEVER_MATCHES)
def test_an_if_match_no_version_matches_is_a_412(stack, existing, if_match):
    before = stack.items()
    answer = stack.request("PATCH", f"/api/profiles/{existing}", {"locale": "en"}, headers={"If-Match": if_match})
    refused(stack, answer, 412, "version_conflict", "version")
    assert stack.items() == before


@pytest.mark.parametrize("if_match", IF_MATCH_MALFORMED)
def test_a_malformed_if_match_is_a_400(stack, existing, if_match):
    before = stack.items()
    answer = stack.request("PATCH", f"/api/profiles/{existing}", {"locale": "en"}, headers={"If-Match": if_match})
    refused(stack, answer, 400, "invalid_header", "If-Match")
    assert stack.items() == before


def test_if_match_of_an_unknown_profile_is_a_404(stack):
    answer = stack.request("PATCH", f"/api/profiles/{'0' * 32}", {"locale": "en"}, headers={"If-Match": '"²"'})
    assert answer.status == 404
    assert answer.json["error"] == "not_found"


@pytest.mark.parametrize("if_match", ['"1"', "*", ' "1" ', '"7", "1"', '"1",W/"2"', ',"1",,'])
def test_an_if_match_the_current_version_meets_applies_the_change(stack, existing, if_match):
    answer = stack.request("PATCH", f"/api/profiles/{existing}", {"locale": "en"}, headers={"If-Match": if_match})
    assert answer.status == 200, answer.text
    assert answer.json["locale"] == "en"
    assert answer.headers["ETag"] == '"2"'
    stale = stack.request("PATCH", f"/api/profiles/{existing}", {"locale": "de"}, headers={"If-Match": if_match})
    if if_match != "*":
        refused(stack, stale, 412, "version_conflict", "version")


def test_if_match_star_leaves_the_version_in_the_body_in_charge(stack, existing):
    answer = stack.request(
        "PATCH", f"/api/profiles/{existing}", {"locale": "en", "version": 7}, headers={"If-Match": "*"}
    )
    refused(stack, answer, 412, "version_conflict", "version")


def test_a_wrong_address_is_refused_before_the_version_is_compared(stack, existing):
    answer = stack.request("PATCH", f"/api/profiles/{existing}", {"email": "no-address"}, headers={"If-Match": '"9"'})
    refused(stack, answer, 422, "invalid_value", "email")


@pytest.mark.parametrize(
    "preferences",
    [
        {"topics": {"news": 1}},
        {"topics": {"news": "yes"}},
        {"topics": {"news": "true"}},
        {"resume": 0},
        {"paused_until": 1_900_000_000},
        {"paused_until": "2027-01-01"},
        {"paused_until": "2027-01-01T10:00:00"},
    ],
)
def test_values_are_what_the_schema_says_not_what_they_could_be_read_as(stack, existing, preferences):
    before = stack.items()
    answer = stack.request("PATCH", f"/api/profiles/{existing}", {"preferences": preferences})
    assert answer.status == 422, answer.text
    assert answer.json["problems"][0]["field"].startswith("body.preferences.")
    answer = stack.request("PATCH", f"/api/profiles/{existing}", {"locale": "en", "version": "1"})
    assert answer.status == 422
    assert stack.items() == before
