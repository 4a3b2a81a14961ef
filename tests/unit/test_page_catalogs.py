"""Page catalogs: the compiled .mo where the build put one (the content layer), else the .po
compiled in memory (a checkout); a .mo older than its .po is not used."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from selfservice.web.render import catalog_folder, compile_po, load_translations

CONTENT = Path(__file__).resolve().parents[2] / "templates"
GERMAN = ("This link has expired", "Dieser Link ist abgelaufen")


@pytest.fixture
def content(tmp_path: Path) -> Path:
    folder = catalog_folder(tmp_path, "de")
    folder.mkdir(parents=True)
    shutil.copy(catalog_folder(CONTENT, "de") / "messages.po", folder / "messages.po")
    load_translations.cache_clear()
    return tmp_path


def _write_mo(content: Path, source_text: str, translation: str) -> Path:
    """A compiled catalog that differs from the .po, to see which one was loaded."""
    header = 'msgid ""\nmsgstr "Content-Type: text/plain; charset=UTF-8\\n"\n\n'
    po_text = f'{header}msgid "{source_text}"\nmsgstr "{translation}"\n'
    scratch = content / "scratch.po"
    scratch.write_text(po_text, encoding="utf-8")
    mo_file = catalog_folder(content, "de") / "messages.mo"
    mo_file.write_bytes(compile_po(scratch, "de").getvalue())
    return mo_file


def test_a_checkout_compiles_the_po_in_memory(content: Path) -> None:
    assert load_translations(content, "de").gettext(GERMAN[0]) == GERMAN[1]
    assert not (catalog_folder(content, "de") / "messages.mo").exists(), "nothing is written next to the sources"


def test_the_compiled_catalog_is_loaded_where_there_is_one(content: Path) -> None:
    mo_file = _write_mo(content, GERMAN[0], "aus der .mo-Datei")
    po_file = catalog_folder(content, "de") / "messages.po"
    os.utime(mo_file, (po_file.stat().st_mtime + 10,) * 2)
    assert load_translations(content, "de").gettext(GERMAN[0]) == "aus der .mo-Datei"


def test_the_content_layer_has_only_the_compiled_catalog(content: Path) -> None:
    _write_mo(content, GERMAN[0], "aus der .mo-Datei")
    (catalog_folder(content, "de") / "messages.po").unlink()
    assert load_translations(content, "de").gettext(GERMAN[0]) == "aus der .mo-Datei"


def test_a_compiled_catalog_older_than_its_source_is_not_used(content: Path) -> None:
    mo_file = _write_mo(content, GERMAN[0], "veraltet")
    po_file = catalog_folder(content, "de") / "messages.po"
    os.utime(mo_file, (po_file.stat().st_mtime - 10,) * 2)
    assert load_translations(content, "de").gettext(GERMAN[0]) == GERMAN[1]


def test_english_is_the_source_language(content: Path) -> None:
    assert load_translations(content, "en").gettext(GERMAN[0]) == GERMAN[0]
