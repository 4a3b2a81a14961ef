"""The outbox: every email moto's SES accepted, parsed for people and tests.

SES v1 and v2 share moto's ``ses`` backend and its ``sent_messages`` list. Raw messages
(what the product sends, so that its own headers survive) are parsed with the standard
``email`` package. moto keeps no send time, so the backend's send methods are wrapped to
record one per message id.
"""

from __future__ import annotations

import email
import email.policy
import functools
import re
import threading
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import getaddresses, parsedate_to_datetime
from html.parser import HTMLParser
from typing import Any

from devstack.cfn import ACCOUNT_ID, REGION
from devstack.patching import MotoPatch, install_all, uninstall_all

_sent_at: dict[str, datetime] = {}
_sent_lock = threading.Lock()
_WRAPPED = ("send_email", "send_raw_email", "send_templated_email")


def _recording(method: Any) -> Any:
    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        message = method(self, *args, **kwargs)
        with _sent_lock:
            _sent_at[str(getattr(message, "id", ""))] = datetime.now(tz=UTC)
        return message

    return wrapper


_PATCHES = tuple(
    MotoPatch(
        "moto.ses.models.SESBackend",
        name,
        _recording,
        works_around="moto's SES keeps no send time for a message",
    )
    for name in _WRAPPED
)


def install_outbox_patch() -> None:
    """Record the time of every send (idempotent)."""
    install_all(_PATCHES)


def uninstall_outbox_patch() -> None:
    """Give moto its own send methods back."""
    uninstall_all(_PATCHES)


def _backend(account_id: str, region: str) -> Any:
    from moto.ses.models import ses_backends

    return ses_backends[account_id][region]


_URL = re.compile(r"https?://[^\s<>\"')\]]+")


class _LinkCollector(HTMLParser):
    """Collects the ``href`` of every ``<a>`` in document order."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href") if tag == "a" else None
        if href:
            self.links.append(href)


def extract_links(html: str | None, text: str | None) -> list[str]:
    """The links of an email (from the HTML part, else from the text part), without duplicates."""
    links: list[str] = []
    if html:
        collector = _LinkCollector()
        collector.feed(html)
        links = collector.links
    if not links and text:
        links = _URL.findall(text)
    return list(dict.fromkeys(links))


def _addresses(values: list[str]) -> list[str]:
    return [address for _, address in getaddresses(values) if address]


def _parse_raw(raw: str) -> dict[str, Any]:
    message = email.message_from_string(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    html = message.get_body(preferencelist=("html",))
    text = message.get_body(preferencelist=("plain",))
    headers: dict[str, str] = {}
    for name, value in message.items():
        headers[name] = f"{headers[name]}, {value}" if name in headers else str(value)
    return {
        "to": _addresses([str(v) for v in message.get_all("To", [])]),
        "from": str(message.get("From", "")),
        "subject": str(message.get("Subject", "")),
        "headers": headers,
        "html": html.get_content() if html is not None else None,
        "text": text.get_content() if text is not None else None,
        "date_header": message.get("Date"),
    }


def _describe(message: Any) -> dict[str, Any]:
    message_id = str(getattr(message, "id", ""))
    if hasattr(message, "raw_data"):
        item = _parse_raw(message.raw_data)
        if not item["to"]:
            item["to"] = list(dict.fromkeys(_addresses(list(message.destinations))))
    elif hasattr(message, "body"):
        destinations = message.destinations or {}
        body = str(message.body)
        is_html = "<" in body and ">" in body
        item = {
            "to": list(destinations.get("ToAddresses", [])),
            "from": str(message.source),
            "subject": str(message.subject),
            "headers": {},
            "html": body if is_html else None,
            "text": None if is_html else body,
            "date_header": None,
        }
    else:  # templated messages
        destinations = message.destinations if isinstance(message.destinations, dict) else {}
        item = {
            "to": list(destinations.get("ToAddresses", [])),
            "from": str(message.source),
            "subject": f"(template {message.template})",
            "headers": {},
            "html": None,
            "text": str(message.template_data),
            "date_header": None,
        }
    sent_at = _sent_at.get(message_id)
    date_header = item.pop("date_header")
    if sent_at is None and date_header:
        try:
            sent_at = parsedate_to_datetime(str(date_header))
        except (TypeError, ValueError):
            sent_at = None
    item["sent_at"] = sent_at.isoformat() if sent_at else None
    item["links"] = extract_links(item["html"], item["text"])
    item["message_id"] = message_id
    return item


def list_outbox(account_id: str = ACCOUNT_ID, region: str = REGION) -> list[dict[str, Any]]:
    """Every sent email, newest first."""
    messages = list(_backend(account_id, region).sent_messages)
    return [_describe(message) for message in reversed(messages)]


def get_email(message_id: str, account_id: str = ACCOUNT_ID, region: str = REGION) -> dict[str, Any] | None:
    """One email by its SES message id."""
    for message in _backend(account_id, region).sent_messages:
        if str(getattr(message, "id", "")) == message_id:
            return _describe(message)
    return None


def clear_outbox(account_id: str = ACCOUNT_ID, region: str = REGION) -> int:
    """Empty the outbox; returns how many emails were removed."""
    backend = _backend(account_id, region)
    count = len(backend.sent_messages)
    backend.sent_messages.clear()
    with _sent_lock:
        _sent_at.clear()
    return count
