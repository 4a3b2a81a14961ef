"""Server-rendered pages: Jinja2 with autoescape, Babel message catalogs, one inline stylesheet.

The stylesheet is inlined (no extra request, no third-party asset) and allowed by its hash in
the Content-Security-Policy, so no inline script or other style can run.

Jinja2 and Babel are imported when the first page is rendered, not when the handler is imported.
The page catalogs are compiled when the content layer is built (``templates/Makefile``): on Lambda
a language's catalog is its ``messages.mo``. A checkout holds only the ``.po`` sources (compiled
files are not committed), so the local stack and the tests compile the ``.po`` in memory once per
process, and what a developer just translated shows at the next start, with no build step.
"""

from __future__ import annotations

import base64
import gettext
import hashlib
import io
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from selfservice.formats import format_date, format_datetime
from selfservice.security_headers import TRANSPORT_SECURITY

if TYPE_CHECKING:
    from jinja2 import Environment

LANGUAGES = ("de", "en")


def catalog_folder(content_dir: Path, language: str) -> Path:
    return content_dir / "pages" / "locale" / language / "LC_MESSAGES"


@lru_cache(maxsize=8)
def load_translations(content_dir: Path, language: str) -> gettext.NullTranslations:
    """The page catalog of ``language`` (English is the source: no catalog, texts as written).

    The compiled ``messages.mo`` when there is one and it is not older than its ``.po``; else the
    ``.po`` compiled in memory (a checkout, where nothing is compiled).
    """
    folder = catalog_folder(content_dir, language)
    mo_file, po_file = folder / "messages.mo", folder / "messages.po"
    if mo_file.is_file() and not (po_file.is_file() and po_file.stat().st_mtime > mo_file.stat().st_mtime):
        with mo_file.open("rb") as handle:
            return gettext.GNUTranslations(handle)
    if po_file.is_file():
        return gettext.GNUTranslations(compile_po(po_file, language))
    return gettext.NullTranslations()


def compile_po(po_file: Path, language: str) -> io.BytesIO:
    """The ``.mo`` form of a ``.po`` catalog, in memory (what ``pybabel compile`` writes)."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with po_file.open("rb") as handle:
        catalog = read_po(handle, locale=language)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return buffer


class PageRenderer:
    def __init__(self, content_dir: Path) -> None:
        self._content_dir = content_dir
        self.css = (content_dir / "pages" / "style.css").read_text(encoding="utf-8")
        digest = base64.b64encode(hashlib.sha256(self.css.encode()).digest()).decode()
        self.style_source = f"'sha256-{digest}'"
        self._environments: dict[str, Environment] = {}

    def _environment(self, language: str) -> Environment:
        """One Jinja2 environment per language, built when a page in that language is first rendered."""
        env = self._environments.get(language)
        if env is None:
            env = self._environments[language] = self._new_environment(language)
        return env

    def _new_environment(self, language: str) -> Environment:
        from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

        from selfservice.catalog import cached_catalog

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
        env.filters["date"] = lambda value: format_date(value, language)
        env.filters["datetime"] = lambda value: format_datetime(value, language)
        env.globals["gettext_reason"] = translations.gettext
        env.globals["company_links"] = cached_catalog(self._content_dir / "catalog.yaml").company
        return env

    def render(self, template: str, language: str, **context: Any) -> str:
        env = self._environment(language if language in LANGUAGES else "de")
        return env.get_template(f"pages/{template}.html").render(lang=language, css=self.css, **context)

    def translator(self, language: str) -> Callable[[str], str]:
        """gettext of the page catalog of ``language`` (for texts built outside a template)."""
        return load_translations(self._content_dir, language if language in LANGUAGES else "de").gettext

    def security_headers(self) -> dict[str, str]:
        return {
            "Content-Security-Policy": (
                f"default-src 'none'; style-src {self.style_source}; img-src 'self' data:; "
                "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
            ),
            "Referrer-Policy": "no-referrer",
            **TRANSPORT_SECURITY,
            "X-Frame-Options": "DENY",
            "Cache-Control": "no-store",
        }
