"""Values checked as ``check`` will check them, with :mod:`autoconf.schema`'s readers.

Placeholder typos corrected (:func:`fix_placeholders`); host names, URLs and
user names read outside a file, each failure a note for the admin.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from typing import Any, TypeVar

from autoconf.ispdb.document import Notes
from autoconf.placeholders import EMAILADDRESS, HOST_PLACEHOLDERS, PLACEHOLDERS
from autoconf.schema import Checker
from autoconf.yamlio import MarkedMap

T = TypeVar("T")

# What looks like a placeholder, as the domain-file check sees it; URL escapes
# such as %2F or %C3%BC do not match.
PLACEHOLDER_LIKE = re.compile(r"%[A-Za-z][A-Za-z_]{3,}%?")
_NAMES = [p.strip("%") for p in PLACEHOLDERS]
_KEY = "value"  # the key a single value is checked under


def marked_map(values: dict[str, Any]) -> MarkedMap:
    """A mapping the schema readers accept, for checking values outside a file."""
    marked = MarkedMap(values)
    marked.line = 1
    marked.key_lines = dict.fromkeys(values, 1)
    return marked


def checked(read: Callable[[Checker, MarkedMap], T | None], value: object) -> tuple[T | None, str]:
    """``read`` applied to ``value``: the result, or None and the first error it reports."""
    checker = Checker("(import)")
    result = read(checker, marked_map({_KEY: value}))
    errors = [p.message for p in checker.problems if p.is_error]
    return (None, errors[0]) if errors else (result, "")


def _read_host(c: Checker, m: MarkedMap) -> str | None:
    return c.hostname(m, _KEY, _KEY, placeholders=HOST_PLACEHOLDERS)


def read_name(c: Checker, m: MarkedMap) -> str | None:
    return c.hostname(m, _KEY, _KEY)


def read_url(c: Checker, m: MarkedMap) -> str | None:
    return c.url(m, _KEY, _KEY, required=True)


def _read_template(c: Checker, m: MarkedMap) -> str | None:
    return c.template(m, _KEY, _KEY, default=EMAILADDRESS)


def read_texts(c: Checker, m: MarkedMap) -> tuple[tuple[str, str], ...] | None:
    return c.language_texts(m, _KEY, _KEY)


def fix_placeholders(text: str, where: str, notes: Notes) -> str:
    """``text`` with near misses such as ``%EMAILADDRESS`` corrected, each with a note.

    What is too far from every placeholder stays, for the caller's check to refuse.
    """

    def correct(match: re.Match[str]) -> str:
        found = match.group(0)
        if found in PLACEHOLDERS:
            return found
        close = difflib.get_close_matches(found.strip("%").upper(), _NAMES, n=1, cutoff=0.8)
        if not close:
            return found
        fixed = f"%{close[0]}%"
        notes.add(where, f"typo {found!r} corrected to {fixed!r}")
        return fixed

    return PLACEHOLDER_LIKE.sub(correct, text)


def checked_host(raw: str, where: str, notes: Notes) -> str | None:
    text = fix_placeholders(raw, where, notes)
    host, problem = checked(_read_host, text)
    if host is None:
        notes.add(where, f"hostname: {problem}; server left out")
    elif host != text:
        notes.add(where, f"hostname {text!r} written as {host!r}")
    return host


def checked_url(raw: str, where: str, what: str, notes: Notes) -> str | None:
    """A URL ``check`` accepts (http only with its warning), or None with a note."""
    text = fix_placeholders(raw, where, notes)
    url, problem = checked(read_url, text)
    if url is None:
        notes.add(where, f"{what} left out: {problem or 'no URL'}")
    return url


def checked_template(raw: str, where: str, notes: Notes) -> tuple[str | None, str]:
    """A user name: placeholders corrected and checked."""
    text = fix_placeholders(raw, where, notes)
    return checked(_read_template, text)
