"""What the JSON API reads from a request besides its parameters: the body and ``If-Match``.

:func:`readable` runs before routing (Powertools parses a body for validation before any middleware
runs) and refuses, with a 4xx problem, content the API will not read: too large (413), not JSON
(415), not UTF-8 or nested too deep (400). What it lets through is what Powertools can parse:
text, with the canonical ``Content-Type: application/json``. Only the content of POST, PUT and PATCH
is read; the content of other methods has no meaning here and is ignored, as before.

:func:`expected_versions` reads ``If-Match`` by RFC 9110: ``*``, or a list of entity tags compared
strongly with the profile's ETag ``"<version>"``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from http import HTTPStatus
from typing import Any

from selfservice.api_errors import RequestRefused

JSON_MEDIA_TYPE = "application/json"
METHODS_WITH_CONTENT = frozenset({"POST", "PUT", "PATCH"})
MAX_JSON_DEPTH = 32
"""Deepest nesting of arrays and objects read (the deepest body the API takes has 4 levels);
deeper bodies are refused before parsing, so a parser never recurses on them."""

_MEDIA_TYPE_PARAMETER = re.compile(r";\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*=\s*(\"[^\"]*\"|[^;\s]*)\s*")
_JSON_TOKENS = re.compile(r'\\.|["\[\]{}]', re.DOTALL)


def readable(event: dict[str, Any], max_body_bytes: int) -> dict[str, Any]:
    """``event`` with a body the API can read, or :class:`RequestRefused` saying why it is not."""
    method = str(event.get("requestContext", {}).get("http", {}).get("method", "")).upper()
    body = event.get("body")
    if method not in METHODS_WITH_CONTENT or not body:
        return event
    is_base64 = bool(event.get("isBase64Encoded"))
    if len(body) > (max_body_bytes * 4 // 3 + 4 if is_base64 else max_body_bytes):
        raise _too_large()  # longer than any body within the limit: refused before anything is decoded
    headers = {str(name).lower(): value for name, value in (event.get("headers") or {}).items()}
    _check_media_type(headers.get("content-type"), method)
    # The limit is in bytes, of what was sent: a character is up to 4, base64 is a third longer.
    content = _base64_decoded(body) if is_base64 else body.encode("utf-8", "surrogatepass")
    if len(content) > max_body_bytes:
        raise _too_large()
    text = _utf8_text(content) if is_base64 else body
    if json_depth(text, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise RequestRefused(
            HTTPStatus.BAD_REQUEST,
            "too_deep",
            f"the body nests arrays and objects deeper than {MAX_JSON_DEPTH} levels",
            "body",
        )
    headers["content-type"] = JSON_MEDIA_TYPE
    return {**event, "headers": headers, "body": text, "isBase64Encoded": False}


def parsed_json(text: str) -> Any:
    """The resolver's JSON parser: :func:`json.loads`, where anything the standard library cannot read
    is a :class:`json.JSONDecodeError` (a 400), also an integer longer than Python converts (4,300
    digits), which ``json.loads`` refuses with a bare ValueError."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise
    except ValueError as error:
        raise json.JSONDecodeError(str(error).partition(":")[0], text, 0) from None


def media_type(content_type: str) -> tuple[str, dict[str, str]]:
    """The media type of a Content-Type value, lower-cased (RFC 9110: case-insensitive), and its
    parameters (names lower-cased, quotes removed)."""
    kind, _, rest = content_type.partition(";")
    parameters = {
        name.lower(): value.strip('"') for name, value in _MEDIA_TYPE_PARAMETER.findall(";" + rest if rest else "")
    }
    return kind.strip().lower(), parameters


def _check_media_type(content_type: str | None, method: str) -> None:
    if content_type is None or not content_type.strip():  # no type given: read as JSON, as the API always has
        return
    kind, parameters = media_type(content_type)
    if kind == JSON_MEDIA_TYPE and parameters.get("charset", "utf-8").lower() in ("utf-8", "utf8"):
        return
    headers = {"Accept": JSON_MEDIA_TYPE}
    if method == "PATCH":
        headers["Accept-Patch"] = JSON_MEDIA_TYPE
    raise RequestRefused(
        HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "send the body as JSON in UTF-8, with Content-Type: application/json",
        "Content-Type",
        headers,
    )


def _too_large() -> RequestRefused:
    return RequestRefused(
        HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "body_too_large", "the request body is too large", "body"
    )


def _not_utf8() -> RequestRefused:
    return RequestRefused(HTTPStatus.BAD_REQUEST, "invalid_encoding", "the body is not text in UTF-8", "body")


def _base64_decoded(body: str) -> bytes:
    try:
        return base64.b64decode(body, validate=True)
    except binascii.Error:
        raise _not_utf8() from None


def _utf8_text(content: bytes) -> str:
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        raise _not_utf8() from None


def json_depth(text: str, limit: int) -> int:
    """How deep arrays and objects nest in ``text`` (brackets inside strings do not count); counting
    stops once past ``limit``. Linear, without parsing: valid JSON or not, nothing recurses."""
    depth = deepest = 0
    in_string = False
    for token in _JSON_TOKENS.finditer(text):
        char = token.group()
        if char == '"':
            in_string = not in_string
        elif in_string or len(char) == 2:  # inside a string, or an escape pair
            continue
        elif char in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    break
        else:
            depth -= 1
    return deepest


# If-Match (RFC 9110 section 13.1.1): "*" / #entity-tag; entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE,
# etagc = %x21 / %x23-7E / obs-text. A header value arrives decoded, so obs-text is any character past
# 0x7F. The profile's ETag is strong and its value the version in plain ASCII digits.
_ENTITY_TAG = re.compile('(W/)?"([\x21\x23-\x7e\x80-\U0010ffff]*)"')
_VERSION = re.compile(r"[1-9][0-9]{0,17}")

ANY_VERSION = None
"""``If-Match: *`` (or no If-Match): the header asks for no particular version."""


def expected_versions(value: str | None) -> frozenset[int] | None:
    """The versions ``If-Match`` accepts, or :data:`ANY_VERSION`.

    A weak tag, or a strong one that is not a version, matches no version (an empty set: the
    precondition fails, 412). A value that is not ``*`` or a list of entity tags is
    :class:`RequestRefused` (400).
    """
    if value is None or value.strip(" \t") == "*":
        return ANY_VERSION
    versions: set[int] = set()
    position = _after_separators(value, 0)
    while position < len(value):
        tag = _ENTITY_TAG.match(value, position)
        if tag is None:
            raise _malformed_if_match()
        weak, opaque = tag.groups()
        if not weak and _VERSION.fullmatch(opaque):
            versions.add(int(opaque))
        position = _after_separators(value, tag.end())
        if position < len(value) and "," not in value[tag.end() : position]:
            raise _malformed_if_match()  # two tags without a comma between them
    return frozenset(versions)


def _after_separators(value: str, position: int) -> int:
    """Where the next list element starts: past whitespace and (empty) list elements."""
    while position < len(value) and value[position] in " \t,":
        position += 1
    return position


def _malformed_if_match() -> RequestRefused:
    return RequestRefused(
        HTTPStatus.BAD_REQUEST,
        "invalid_header",
        'must be * or the profile version as an entity tag, like "3" (several separated by commas)',
        "If-Match",
    )
