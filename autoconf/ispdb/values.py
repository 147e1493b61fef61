"""Values checked as ``check`` will check them, with :mod:`autoconf.values`.

Placeholder typos corrected (:func:`fix_placeholders`); host names, URLs and
user names read outside a file, each failure a note for the admin.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from typing import TypeVar

from autoconf import values
from autoconf.ispdb.document import Notes
from autoconf.placeholders import HOST_PLACEHOLDERS, PLACEHOLDER_LIKE, PLACEHOLDERS
from autoconf.values import Invalid

_NAMES = [p.strip("%") for p in PLACEHOLDERS]

T = TypeVar("T")


def checked(check: Callable[[str], T], value: str) -> tuple[T | None, str]:
    """``check`` applied to ``value``: the result, or None and the first reason it gives."""
    if not value.strip():
        return None, "must not be empty"
    try:
        return check(value), ""
    except Invalid as exc:
        return None, exc.messages[0]


def checked_name(value: str) -> tuple[str | None, str]:
    """A host name without placeholders (a provider id, an OAuth issuer)."""
    return checked(values.hostname, value)


def checked_url_value(value: str) -> tuple[str | None, str]:
    """A URL as ``check`` takes it (http with a warning the import does not repeat)."""
    url, problem = checked(values.url, value)
    return (url[0] if url else None), problem


def checked_language(lang: str) -> str:
    """ "" when ``lang`` is a language tag, else why not."""
    return checked(values.language_tag, lang)[1]


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
    host, problem = checked(lambda t: values.hostname(t, HOST_PLACEHOLDERS), text)
    if host is None:
        notes.add(where, f"hostname: {problem}; server left out")
    elif host != text:
        notes.add(where, f"hostname {text!r} written as {host!r}")
    return host


def checked_url(raw: str, where: str, what: str, notes: Notes) -> str | None:
    """A URL ``check`` accepts (http only with its warning), or None with a note."""
    text = fix_placeholders(raw, where, notes)
    url, problem = checked_url_value(text)
    if url is None:
        notes.add(where, f"{what} left out: {problem or 'no URL'}")
    return url


def checked_template(raw: str, where: str, notes: Notes) -> tuple[str | None, str]:
    """A user name: placeholders corrected and checked."""
    text = fix_placeholders(raw, where, notes)
    return checked(values.template, text)
