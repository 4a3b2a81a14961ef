"""One page request: cookies, form, language, session, CSRF, and the responses a page answers with.

Routes reach it through :func:`current`; :mod:`selfservice.web.middleware` signs the customer in
and checks CSRF tokens before a route runs. Every response carries the security headers of
:meth:`~selfservice.web.render.PageRenderer.security_headers` (built here, not in a middleware:
Powertools runs middlewares around routes only, and the 401/403/404/500 pages come from exception
handlers, which run outside them).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from functools import cached_property, lru_cache
from http import HTTPStatus
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import BaseRouter
from aws_lambda_powertools.shared.cookies import Cookie, SameSite
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2
from babel import negotiate_locale

from selfservice import bootstrap, origin
from selfservice.domain.errors import NotFound
from selfservice.domain.models import Language, Profile
from selfservice.settings import get_settings
from selfservice.tokens import InvalidToken
from selfservice.usecases import access, privacy, subscription
from selfservice.web import forms
from selfservice.web.render import LANGUAGES, load_translations
from selfservice.web.session import (
    ANONYMOUS_CSRF_COOKIE,
    SESSION_COOKIE,
    SESSION_LIFETIME,
    Session,
    anonymous_csrf_ok,
    new_anonymous_csrf,
)

LANGUAGE_COOKIE = "ss_lang"
HTML = "text/html; charset=utf-8"


class SignInNeeded(Exception):
    """No valid session: the page offers a new link instead."""


class CsrfRefused(Exception):
    """A POST without the form's CSRF token."""


def current(router: BaseRouter) -> PageRequest:
    """The page request being answered (one per invocation, kept in the resolver's context)."""
    found = router.context.get("page")
    if not isinstance(found, PageRequest):
        found = PageRequest(router.current_event)  # type: ignore[arg-type]
        router.append_context(page=found)
    return found


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def accepted_languages(header: str) -> list[str]:
    """The tags of an Accept-Language header, most preferred first (q-values respected, q=0 dropped)."""
    from selfservice.web.negotiation import weighted

    ranked = [(-weight, position, tag) for position, (tag, weight) in enumerate(weighted(header)) if weight > 0]
    return [tag for _weight, _position, tag in sorted(ranked)]


@lru_cache(maxsize=4)
def _gettext(content_dir: Path, language: str) -> Callable[[str], str]:
    return load_translations(content_dir, language).gettext


class PageRequest:
    """The request of one page, with the wiring for its settings (links point at its domain)."""

    def __init__(self, event: APIGatewayProxyEventV2) -> None:
        self.event = event
        self.settings = origin.for_request(get_settings(), event.request_context.domain_name)
        self.wiring = bootstrap.wiring(self.settings)
        self.adapters = self.wiring.adapters
        self.catalog = self.adapters.catalog
        self.session: Session | None = None
        self.profile: Profile | None = None

    # --- what came in ------------------------------------------------------------------------
    @cached_property
    def cookies(self) -> dict[str, str]:
        jar: dict[str, str] = {}
        for raw in self.event.cookies or []:
            name, _, value = raw.partition("=")
            jar.setdefault(name.strip(), value.strip())
        return jar

    @cached_property
    def form(self) -> forms.FormData:
        """The submitted form (:class:`~selfservice.web.forms.UnreadableForm` for a body no page sends)."""
        content_type = self.event.headers.get("content-type") or ""
        if content_type.lower().startswith("multipart/form-data"):  # RFC 8058 allows it for one-click
            return forms.parse_multipart_form(self.event.body, bool(self.event.is_base64_encoded), content_type)
        return forms.parse_form(self.event.body, bool(self.event.is_base64_encoded))

    def field(self, name: str) -> str:
        return forms.first(self.form, name)

    def query(self, name: str) -> str:
        return self.event.get_query_string_value(name) or ""

    def client_ip(self) -> str:
        return self.event.request_context.http.source_ip

    def evidence(self) -> subscription.ClientEvidence:
        return subscription.ClientEvidence(
            ip=self.event.request_context.http.source_ip, user_agent=self.event.headers.get("user-agent") or ""
        )

    # --- language ----------------------------------------------------------------------------
    def language(self, profile: Profile | None = None) -> str:
        """The switch's cookie, else the profile's language, else the browser's, else the catalog's."""
        chosen = self.cookies.get(LANGUAGE_COOKIE)
        if chosen in LANGUAGES:
            return chosen
        if profile is not None:
            return profile.locale
        preferred = accepted_languages(self.event.headers.get("accept-language") or "")
        return negotiate_locale(preferred, LANGUAGES, sep="-", aliases={}) or self.catalog.default_language

    def switched_language(self) -> Language | None:
        """The language chosen with the switch of a page's own form (what was typed stays), if any."""
        chosen = self.field("switch_language")
        return "en" if chosen == "en" else "de" if chosen == "de" else None

    def language_cookie(self, language: str) -> Cookie:
        return self.cookie(LANGUAGE_COOKIE, language, 365 * 24 * 3600)

    def translator(self, language: str) -> Callable[[str], str]:
        """gettext of the page catalog (English is the source language, so it translates to itself)."""
        return _gettext(self.settings.content_dir, language)

    # --- session and CSRF --------------------------------------------------------------------
    def sign_in(self) -> tuple[Session, Profile]:
        """The signed-in customer and their profile (one GetItem), or SignInNeeded."""
        if self.session is None or self.profile is None:
            session = self._session()
            try:
                self.profile = access.signed_in_profile(self.adapters, session.profile_id, session.token_version)
            except InvalidToken:
                raise SignInNeeded from None
            self.session = session
        return self.session, self.profile

    def sign_in_with_records(self) -> tuple[Session, privacy.Records]:
        """Like :meth:`sign_in`, plus ledger and requests from the same single Query."""
        session = self._session()
        try:
            records = privacy.records(self.adapters, session.profile_id)
        except NotFound:
            raise SignInNeeded from None
        try:
            access.check_token_version(records[0], session.token_version)
        except InvalidToken:
            raise SignInNeeded from None
        return session, records

    def _session(self) -> Session:
        session = self.wiring.sessions.read(self.cookies.get(SESSION_COOKIE))
        if session is None:
            raise SignInNeeded
        return session

    def check_session_csrf(self) -> None:
        session, _profile = self.sign_in()
        if not session.accepts(self.field("csrf")):
            raise CsrfRefused

    def check_anonymous_csrf(self) -> None:
        """A form shown without a session: double-submit check."""
        if not anonymous_csrf_ok(self.cookies.get(ANONYMOUS_CSRF_COOKIE), self.field("csrf")):
            raise CsrfRefused

    def check_any_csrf(self) -> None:
        """The language switch is on every page, with or without a session."""
        session = self.wiring.sessions.read(self.cookies.get(SESSION_COOKIE))
        if not (session and session.accepts(self.field("csrf"))):
            self.check_anonymous_csrf()

    def session_cookie(self, profile: Profile) -> Cookie:
        """A new session for ``profile`` (after a link or a confirmation)."""
        _session, value = self.wiring.sessions.new(profile.id, profile.token_version)
        return self.cookie(SESSION_COOKIE, value, int(SESSION_LIFETIME.total_seconds()))

    def cookie(self, name: str, value: str, max_age: int | None) -> Cookie:
        return Cookie(
            name=name,
            value=value,
            path="/",
            secure=self.settings.public_base_url.startswith("https://"),
            http_only=True,
            max_age=max_age,
            same_site=SameSite.LAX_MODE,
        )

    # --- responses ---------------------------------------------------------------------------
    def back_to(self) -> str:
        """Where the language switch returns to: this page, with its query (a link's token) on a GET."""
        event = self.event
        query = event.raw_query_string if event.http_method == "GET" else ""
        return f"{event.path}?{query}" if query else event.path

    def page(
        self,
        template: str,
        lang: str,
        *,
        session: Session | None = None,
        status: HTTPStatus = HTTPStatus.OK,
        section: str | None = None,
        extra_cookies: list[Cookie] | None = None,
        **context: Any,
    ) -> Response[str]:
        response_cookies = list(extra_cookies or [])
        if session is not None:
            csrf = session.csrf_token
        else:
            csrf = self.cookies.get(ANONYMOUS_CSRF_COOKIE) or new_anonymous_csrf()
            if self.cookies.get(ANONYMOUS_CSRF_COOKIE) != csrf:
                response_cookies.append(self.cookie(ANONYMOUS_CSRF_COOKIE, csrf, None))
        context.setdefault("notice", None)
        context.setdefault("problem", None)
        body = self.wiring.pages.render(
            template,
            lang,
            csrf=csrf,
            signed_in=session is not None,
            section=section,
            back=self.back_to(),
            company=self.settings.company_name,
            contact=self.catalog.contact,
            **context,
        )
        return self._respond(status, HTML, body, cookies=response_cookies)

    def message(
        self,
        lang: str,
        title: str,
        paragraphs: list[str],
        *,
        status: HTTPStatus = HTTPStatus.OK,
        offer_new_link: bool = False,
        extra_cookies: list[Cookie] | None = None,
    ) -> Response[str]:
        return self.page(
            "message",
            lang,
            status=status,
            title=title,
            paragraphs=paragraphs,
            offer_new_link=offer_new_link,
            extra_cookies=extra_cookies,
        )

    def redirect(self, location: str, extra_cookies: list[Cookie] | None = None) -> Response[str]:
        return self._respond(HTTPStatus.SEE_OTHER, HTML, "", {"Location": location}, extra_cookies)

    def download(self, document: dict[str, Any], filename: str) -> Response[str]:
        body = json.dumps(document, ensure_ascii=False, indent=2)
        disposition = {"Content-Disposition": f'attachment; filename="{filename}"'}
        return self._respond(HTTPStatus.OK, "application/json; charset=utf-8", body, disposition)

    def _respond(
        self,
        status: HTTPStatus,
        content_type: str,
        body: str,
        headers: dict[str, str] | None = None,
        cookies: list[Cookie] | None = None,
    ) -> Response[str]:
        return Response(
            status_code=status.value,
            content_type=content_type,
            body=body,
            headers={**self.wiring.pages.security_headers(), **(headers or {})},
            cookies=cookies or [],
        )
