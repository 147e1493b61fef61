"""The page's catalogs: every message of the page's sources is translated in every
language, and the template (page.pot) is the sources' own."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from autoconf.render.languages import DEFAULT_LANGUAGE, LANGUAGES, translations

ROOT = Path(__file__).resolve().parents[1]
LOCALE = ROOT / "autoconf" / "locale"


def extracted() -> set[str]:
    """The messages of the page's sources, extracted as `make messages` extracts them."""
    with (ROOT / "babel.cfg").open(encoding="utf-8") as config:
        method_map, options_map = parse_mapping_cfg(config)
    found = extract_from_dir(
        str(ROOT), method_map, options_map, keywords={"_": None, "gettext": None, "N_": None}
    )
    return {message for _, _, message, _, _ in found if isinstance(message, str)}


def catalog(language: str) -> Catalog:
    with (LOCALE / language / "LC_MESSAGES" / "page.po").open("rb") as po:
        return read_po(po, locale=language)


def test_the_template_is_up_to_date() -> None:
    """page.pot holds exactly what the sources say (run `make messages` after a change)."""
    with (LOCALE / "page.pot").open("rb") as pot:
        template = {str(m.id) for m in read_po(pot) if m.id}
    assert template == extracted()


def untranslated(translated: Catalog) -> list[str]:
    """The sources' messages the catalog lacks, leaves empty or marks fuzzy."""
    return [
        message
        for message in sorted(extracted())
        if (entry := translated.get(message)) is None or not entry.string or entry.fuzzy
    ]


@pytest.mark.parametrize("language", [code for code in LANGUAGES if code != DEFAULT_LANGUAGE])
def test_every_message_is_translated(language: str) -> None:
    translated = catalog(language)
    assert untranslated(translated) == []
    # Placeholders kept (python-format), nothing else Babel's checkers object to.
    assert [(m.id, str(e)) for m in translated for e in m.check(translated)] == []
    # And the catalog as the page loads it gives the same texts.
    gettext = translations(language).gettext
    assert all(gettext(message) == translated.get(message).string for message in extracted())


def test_a_missing_or_fuzzy_message_is_found() -> None:
    """The check above cannot pass vacuously: a catalog without one entry, or with
    one marked fuzzy, fails it."""
    german = catalog("de")
    first, second = sorted(extracted())[:2]
    german.delete(first)
    german[second].flags.add("fuzzy")
    assert untranslated(german) == [first, second]
