"""Server-rendered pages: Jinja2 with autoescape, Babel message catalogs, one inline stylesheet.

The stylesheet is inlined (no extra request, no third-party asset) and allowed by its hash in
the Content-Security-Policy, so no inline script or other style can run.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
from functools import cached_property
from pathlib import Path
from typing import Any

from babel.dates import format_date, format_datetime, get_timezone
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

LANGUAGES = ("de", "en")


def load_translations(content_dir: Path, language: str) -> NullTranslations:
    """The page catalog of ``language`` compiled in memory from its .po file (English is the source)."""
    po_file = content_dir / "pages" / "locale" / language / "LC_MESSAGES" / "messages.po"
    if not po_file.is_file():
        return NullTranslations()
    with po_file.open("rb") as handle:
        catalog = read_po(handle, locale=language)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(fp=buffer)


class PageRenderer:
    def __init__(self, content_dir: Path) -> None:
        self._content_dir = content_dir
        self.css = (content_dir / "pages" / "style.css").read_text(encoding="utf-8")
        digest = base64.b64encode(hashlib.sha256(self.css.encode()).digest()).decode()
        self.style_source = f"'sha256-{digest}'"

    @cached_property
    def _environments(self) -> dict[str, Environment]:
        return {language: self._environment(language) for language in LANGUAGES}

    def _environment(self, language: str) -> Environment:
        env = Environment(
            loader=FileSystemLoader(self._content_dir),
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=True),
            undefined=StrictUndefined,
            extensions=["jinja2.ext.i18n"],
            trim_blocks=True,
            lstrip_blocks=True,
        )
        translations = load_translations(self._content_dir, language)
        env.install_gettext_translations(translations, newstyle=True)  # type: ignore[attr-defined]
        env.filters["date"] = lambda value: _format_date(value, language)
        env.filters["datetime"] = lambda value: _format_datetime(value, language)
        env.globals["gettext_reason"] = translations.gettext
        return env

    def render(self, template: str, language: str, **context: Any) -> str:
        env = self._environments[language if language in LANGUAGES else "de"]
        return env.get_template(f"pages/{template}.html").render(lang=language, css=self.css, **context)

    def security_headers(self) -> dict[str, str]:
        return {
            "Content-Security-Policy": (
                f"default-src 'none'; style-src {self.style_source}; img-src 'self' data:; "
                "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
            ),
            "Referrer-Policy": "no-referrer",
            "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
            "Cache-Control": "no-store",
        }


def _format_date(value: dt.date | dt.datetime | str | None, language: str) -> str:
    if value in (None, ""):
        return ""
    if isinstance(value, str):
        value = dt.date.fromisoformat(value[:10])
    return format_date(value, format="long", locale=language)


def _format_datetime(value: dt.datetime | None, language: str) -> str:
    if value is None:
        return ""
    return format_datetime(value, format="medium", tzinfo=get_timezone("Europe/Berlin"), locale=language)
