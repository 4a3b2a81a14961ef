"""Email: Jinja2 templates (HTML + text, German and English), CSS inlined, MIME built with the
standard library, sent through SES v2 raw content so every header (List-Unsubscribe,
List-Unsubscribe-Post, Feedback-ID) is ours. Every email sent is logged in the customer's ledger.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from selfservice.domain.models import LedgerEntry, LedgerKind, Profile, Source, address_hash
from selfservice.domain.review import why_not_marketing

if TYPE_CHECKING:
    import css_inline
    from jinja2 import Environment

# Jinja2, css-inline and the email package are imported when the first email is rendered or
# built, not when a handler is imported: most requests of the API and the pages send no email.


@cache
def _inliner() -> css_inline.CSSInliner:
    import css_inline

    return css_inline.CSSInliner(keep_style_tags=True)


@dataclass(frozen=True)
class RenderedEmail:
    email_type: str
    language: str
    subject: str
    html: str
    text: str
    marketing: bool


@dataclass(frozen=True)
class SendOutcome:
    sent: bool
    message_id: str | None = None
    skipped_reason: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


_TOKEN = re.compile(r"([?&]token=)[A-Za-z0-9._-]+")


def without_tokens(text: str) -> str:
    """``text`` with the signed token of every link replaced by ``…`` (a kept copy opens nothing)."""
    return _TOKEN.sub(r"\1…", text)


def part_digest(text: str) -> str:
    """SHA-256 (hex) of an email part's decoded text, line endings as LF: a copy received by SMTP
    (CRLF) or saved by a mail program hashes the same as what was rendered."""
    return hashlib.sha256(text.replace("\r\n", "\n").encode()).hexdigest()


def body_record(email: RenderedEmail) -> dict[str, str]:
    """What the ledger keeps of an email that asks for consent (the double opt-in), so a proof can show it.

    ``text_sha256`` / ``html_sha256``: :func:`part_digest` of the plain-text and HTML parts as sent. A
    copy of the email that a recipient or an archive presents matches when its decoded part has the
    same digest: that proves the copy is the email we sent. The body cannot be rendered again to the
    same bytes (its link holds a signed token with the time of sending), so the digest is checked
    against a presented copy, not against a new rendering.
    ``text_copy``: the plain-text part with the link's token removed, so the proof can print what the
    email said without keeping a link that opens anything (about 1 KB; the HTML part says the same).
    """
    return {
        "text_sha256": part_digest(email.text),
        "html_sha256": part_digest(email.html),
        "text_copy": without_tokens(email.text),
        "language": email.language,
    }


class EmailRenderer:
    """Renders ``emails/<type>.<language>.html`` and ``.txt``; the subject is the template's ``subject`` block.

    Every email's footer links the company's imprint and privacy policy: the templates get
    ``company_links`` (the ``company`` section of the catalog next to them), ``accessibility_url``
    (the pages' accessibility statement under ``base_url``) and a ``datetime`` filter (Babel, the
    company's time zone) besides what each caller passes.
    """

    def __init__(self, content_dir: Path, base_url: str = "") -> None:
        self._content_dir = content_dir
        self._base_url = base_url.rstrip("/")

    @cached_property
    def _env(self) -> Environment:
        """Built on the first render (a request that sends no email never imports Jinja2)."""
        from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

        from selfservice.catalog import cached_catalog
        from selfservice.formats import format_date, format_datetime

        env = Environment(
            loader=FileSystemLoader(self._content_dir),
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.globals["company_links"] = cached_catalog(self._content_dir / "catalog.yaml").company
        # The accessibility statement of the pages (their footer's link), when the pages' address is known.
        env.globals["accessibility_url"] = f"{self._base_url}/accessibility" if self._base_url else ""
        env.filters["datetime"] = format_datetime
        env.filters["date"] = format_date
        return env

    def prepare(self) -> None:
        """Import and build what rendering and MIME need, in the calling thread.

        For callers that render from several threads: two threads importing a module at the same
        time can see it half initialised, so the lazy imports happen here once, before them.
        """
        _ = self._env
        _inliner()
        build_mime(RenderedEmail("prepare", "en", "prepare", "<p>prepare</p>", "prepare", False), "a@b.c", "d@e.f", {})

    def render(self, email_type: str, language: str, *, marketing: bool, **context: Any) -> RenderedEmail:
        context = {"lang": language, **context}
        html_template = self._env.get_template(f"emails/{email_type}.{language}.html")
        text_template = self._env.get_template(f"emails/{email_type}.{language}.txt")
        subject = "".join(html_template.blocks["subject"](html_template.new_context(context))).strip()
        html = _inliner().inline(html_template.render(context))
        text = text_template.render(context).strip() + "\n"
        return RenderedEmail(email_type, language, subject, html, text, marketing)


def build_mime(email: RenderedEmail, sender: str, recipient: str, extra_headers: dict[str, str]) -> bytes:
    """A multipart/alternative message: the plain-text part first, the HTML part preferred."""
    from email.message import EmailMessage
    from email.policy import SMTP
    from email.utils import formatdate, make_msgid

    message = EmailMessage(policy=SMTP)
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = email.subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    for name, value in extra_headers.items():
        message[name] = value
    message.set_content(email.text, subtype="plain", charset="utf-8")
    message.add_alternative(email.html, subtype="html", charset="utf-8")
    # set_content() clears Content-* headers, so the language goes on afterwards.
    message["Content-Language"] = email.language
    return message.as_bytes()


class Ledger(Protocol):
    def append(self, entry: LedgerEntry) -> None: ...


class SuppressionList(Protocol):
    def is_suppressed(self, address_hash: str) -> bool: ...


class Mailer:
    """Sends rendered emails through SES v2 and records each send (or skip) in the ledger.

    ``suppression`` is asked before every marketing email, whoever the caller is: a hard-bounced,
    complaining or erased address never gets one again.
    """

    def __init__(
        self,
        ses_client: Any,
        ledger: Ledger,
        sender: str,
        configuration_set: str,
        stage: str,
        *,
        suppression: SuppressionList,
    ) -> None:
        self._ses = ses_client
        self._ledger = ledger
        self._suppression = suppression
        self._sender = sender
        self._configuration_set = configuration_set
        self._stage = stage

    def _deliver(
        self, recipient: str, email: RenderedEmail, extra_headers: dict[str, str]
    ) -> tuple[str, dict[str, str]]:
        """Build the MIME message and hand it to SES v2 as raw content (our headers stay ours)."""
        headers = {"Feedback-ID": f"{email.email_type}:{email.language}:selfservice:{self._stage}", **extra_headers}
        raw = build_mime(email, self._sender, recipient, headers)
        response = self._ses.send_email(
            FromEmailAddress=self._sender,
            Destination={"ToAddresses": [recipient]},
            Content={"Raw": {"Data": raw}},
            ConfigurationSetName=self._configuration_set,
            EmailTags=[{"Name": "email_type", "Value": email.email_type}],
        )
        return str(response.get("MessageId", "")), headers

    @staticmethod
    def _unsubscribe_headers(unsubscribe_url: str | None) -> dict[str, str]:
        """RFC 8058 one-click unsubscribe, on every marketing email."""
        if not unsubscribe_url:
            raise ValueError("a marketing email needs an unsubscribe URL")
        return {"List-Unsubscribe": f"<{unsubscribe_url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}

    def send_claimed(self, profile: Profile, email: RenderedEmail, unsubscribe_url: str) -> str:
        """A marketing email to a customer the caller has checked (consent, pause, suppression
        list) and claimed already; the caller records it. Returns SES's message id."""
        message_id, _headers = self._deliver(profile.email, email, self._unsubscribe_headers(unsubscribe_url))
        return message_id

    def send_internal(self, recipient: str, email: RenderedEmail, reply_to: str | None = None) -> str:
        """An email to the company itself (e.g. the service mailbox); not logged in a customer's history."""
        message_id, _headers = self._deliver(recipient, email, {"Reply-To": reply_to} if reply_to else {})
        return message_id

    def send(
        self,
        profile: Profile,
        email: RenderedEmail,
        source: Source,
        *,
        unsubscribe_url: str | None = None,
        now: dt.datetime | None = None,
        sent_as: LedgerKind = LedgerKind.EMAIL_SENT,
        context: Mapping[str, str] | None = None,
    ) -> SendOutcome:
        """Send to the customer and log it; a marketing email is skipped (and logged as skipped) when the
        customer may not receive it, and always carries RFC 8058 one-click unsubscribe headers.

        ``sent_as`` and ``context`` let a caller record the email as the event it stands for (a
        review request with its campaign), in one ledger entry instead of two.
        """
        now = now or dt.datetime.now(dt.UTC)
        detail = {**(context or {}), "email_type": email.email_type, "subject": email.subject}

        def log(kind: LedgerKind, **outcome: str) -> None:
            """The customer's send log: every email sent or skipped, with its subject."""
            entry = LedgerEntry(profile_id=profile.id, at=now, kind=kind, source=source, detail={**detail, **outcome})
            self._ledger.append(entry)

        extra: dict[str, str] = {}
        if email.marketing:
            extra = self._unsubscribe_headers(unsubscribe_url)
            reason = why_not_marketing(profile, now)
            if reason is None and self._suppression.is_suppressed(address_hash(profile.email)):
                reason = "suppressed"
            if reason:
                log(LedgerKind.EMAIL_SKIPPED, reason=reason)
                return SendOutcome(sent=False, skipped_reason=reason)
        message_id, headers = self._deliver(profile.email, email, extra)
        log(sent_as, message_id=message_id)
        return SendOutcome(sent=True, message_id=message_id, headers=headers)
