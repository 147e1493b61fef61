"""The page's languages: one gettext catalog each (``autoconf/locale/LANG/LC_MESSAGES/page.po``),
read with Babel.

The English texts are the message ids themselves; every other language is a
``.po`` file, which translators edit with any gettext tool (docs/development.md,
"Translations"). Babel compiles each catalog once, in memory, when the page is
first rendered: no compiled ``.mo`` file is kept in the repository or has to be
made at install, so none can be missing or older than its ``.po`` (the container
image, ``pip install`` and ``make run`` all read the same source). Fuzzy entries
are left out, as ``msgfmt`` leaves them out.
"""

from __future__ import annotations

import gettext
import io
from functools import cache
from importlib.resources import files

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

DOMAIN = "page"
DEFAULT_LANGUAGE = "en"
# Each language in its own name, in the order the page lists them.
LANGUAGES: dict[str, str] = {
    "en": "English",
    "de": "Deutsch",
    "fr": "Français",
    "es": "Español",
    "it": "Italiano",
    "nl": "Nederlands",
}


def catalog_path(language: str) -> str:
    return f"locale/{language}/LC_MESSAGES/{DOMAIN}.po"


@cache
def translations(language: str) -> gettext.NullTranslations:
    """The catalog of ``language``; English, the language of the message ids, has none."""
    if language == DEFAULT_LANGUAGE:
        return gettext.NullTranslations()
    with (files("autoconf") / catalog_path(language)).open("rb") as po:
        catalog = read_po(po, locale=language, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def N_(message: str) -> str:  # noqa: N802 -- gettext's name for "translated later"
    """Marks a text for the catalogs (Babel extracts ``N_`` calls); translated where shown."""
    return message
