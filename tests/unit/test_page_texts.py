"""The German pages have no untranslated text, and no translation breaks its placeholders."""

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

REPO = Path(__file__).resolve().parents[2]
PO_FILE = REPO / "templates" / "pages" / "locale" / "de" / "LC_MESSAGES" / "messages.po"
PLACEHOLDER = re.compile(r"%\(\w+\)s|%s|\{\w+\}")


def german_catalog():
    with PO_FILE.open("rb") as handle:
        return read_po(handle, locale="de")


def test_every_page_text_is_translated_to_german():
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None, "translate": None, "InvalidInput": (2,)}
    method_map = [
        ("templates/pages/**.html", "jinja2"),
        ("functions/web/**.py", "python"),
        ("layers/shared/selfservice/web/**.py", "python"),
        ("layers/shared/selfservice/domain/**.py", "python"),
    ]
    options = {"templates/pages/**.html": {"extensions": "jinja2.ext.i18n"}}
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        REPO, method_map=method_map, options_map=options, keywords=keywords
    ):
        found.add(message if isinstance(message, str) else message[0])
    catalog = german_catalog()
    translated = {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id and m.string and not m.fuzzy}
    missing = sorted(found - translated)
    assert not missing, f"run `make i18n` and translate: {missing}"
    assert len(found) > 100


def test_translations_keep_their_placeholders():
    for message in german_catalog():
        if not message.id or not isinstance(message.id, str):
            continue
        source = sorted(PLACEHOLDER.findall(message.id))
        if message.id.startswith(("unknown choice", "unknown frequency", "unknown option", "{channel}")):
            continue  # the German text deliberately leaves out the raw value
        assert sorted(PLACEHOLDER.findall(message.string)) == source, message.id
