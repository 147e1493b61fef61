"""Typed reads from a marked YAML tree that record every problem with its line.

Each reader returns the value, or None when the key is absent or the value is
wrong (the problem is then recorded, never raised), so that one pass over a
file finds everything that is wrong with it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from autoconf.address import InvalidDomain, normalize_domain
from autoconf.errors import Problem, Severity
from autoconf.placeholders import PLACEHOLDER_LIKE, PLACEHOLDERS
from autoconf.yamlio import MarkedList, MarkedMap

# Anything that looks like a placeholder, including typos such as "%EMAILADDRESS"
# without its closing sign; URL escapes such as %2F or %C3%BC do not match.
_HOST_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")


def describe(value: object) -> str:
    """How a wrong value reads in a message: its YAML type and a short form of it."""
    if value is None:
        return "nothing (null)"
    kind = {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
    }.get(type(value))
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if kind is None:
        return f"a {type(value).__name__}"
    text = repr(value) if isinstance(value, str) else str(value).lower()
    if len(text) > 40:
        text = text[:40] + "…"
    return f"{kind} {text}"


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    options = list(choices)
    close = difflib.get_close_matches(word, options, n=3, cutoff=0.6)
    # Equally close matches: the one listed first (the usual choice) wins.
    best = [
        c
        for c in close
        if difflib.SequenceMatcher(None, word, c).ratio()
        == difflib.SequenceMatcher(None, word, close[0]).ratio()
    ]
    match = sorted(best, key=options.index)[:1]
    if not match:  # "days" for "days_to_leave_messages_on_server"
        match = [c for c in choices if len(word) >= 3 and c.lower().startswith(word.lower())]
    return f" (did you mean {match[0]!r}?)" if match else ""


def _line(container: object, key: str | None = None) -> int:
    if isinstance(container, MarkedMap):
        return container.line_of(key) if key is not None else container.line
    if isinstance(container, MarkedList):
        return container.line
    return 1


class Checker:
    """Reads values for one file and collects its problems."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []

    # -- recording ---------------------------------------------------------

    def error_at(self, file: str, line: int, path: str, message: str) -> None:
        self.problems.append(Problem(file, line, path, message))

    def warning_at(self, file: str, line: int, path: str, message: str) -> None:
        self.problems.append(Problem(file, line, path, message, Severity.WARNING))

    def error(self, container: object, key: str | None, path: str, message: str) -> None:
        """An error about ``container[key]`` (or the container itself), at its line."""
        self.error_at(self.file, _line(container, key), path, message)

    def warning(self, container: object, key: str | None, path: str, message: str) -> None:
        self.warning_at(self.file, _line(container, key), path, message)

    @property
    def has_errors(self) -> bool:
        return any(p.is_error for p in self.problems)

    # -- structure ---------------------------------------------------------

    def mapping(self, value: object, path: str, line: int) -> MarkedMap | None:
        if isinstance(value, MarkedMap):
            return value
        self.error_at(self.file, line, path, f"expected a mapping of keys, got {describe(value)}")
        return None

    def keys(self, m: MarkedMap, path: str, allowed: Sequence[str]) -> None:
        for key in m:
            if key not in allowed:
                where = f"{path}.{key}" if path else key
                self.error_at(
                    self.file,
                    m.key_lines.get(key, m.line),
                    where,
                    f"unknown key{did_you_mean(key, allowed)}",
                )

    def child_mapping(self, m: MarkedMap, key: str, path: str) -> MarkedMap | None:
        if key not in m:
            return None
        return self.mapping(m[key], path, m.line_of(key))

    def child_list(self, m: MarkedMap, key: str, path: str) -> MarkedList | None:
        if key not in m:
            return None
        value = m[key]
        if isinstance(value, MarkedList):
            return value
        self.error(m, key, path, f"expected a list, got {describe(value)}")
        return None

    # -- scalars -----------------------------------------------------------

    def _typed(self, m: MarkedMap, key: str, path: str, kind: type, what: str) -> Any:
        if key not in m:
            return None
        value = m[key]
        # bool is a subclass of int, but `port: yes` is never meant as a number.
        if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
            return value
        self.error(m, key, path, f"expected {what}, got {describe(value)}")
        return None

    def string(self, m: MarkedMap, key: str, path: str, *, required: bool = False) -> str | None:
        value: str | None = self._typed(m, key, path, str, "a string")
        if value is None and required and key not in m:
            self.error(m, None, path, "missing: required")
        if value is not None and not value.strip():
            self.error(m, key, path, "must not be empty")
            return None
        return value

    def boolean(self, m: MarkedMap, key: str, path: str) -> bool | None:
        value: bool | None = self._typed(m, key, path, bool, "true or false")
        return value

    def integer(
        self, m: MarkedMap, key: str, path: str, *, minimum: int, maximum: int
    ) -> int | None:
        value: int | None = self._typed(m, key, path, int, "a whole number")
        if value is not None and not minimum <= value <= maximum:
            self.error(m, key, path, f"{value} is out of range ({minimum} to {maximum})")
            return None
        return value

    def port(self, m: MarkedMap, key: str, path: str) -> int | None:
        return self.integer(m, key, path, minimum=1, maximum=65535)

    def choice(
        self,
        m: MarkedMap,
        key: str,
        path: str,
        choices: Sequence[str],
        *,
        default: str | None = None,
    ) -> str | None:
        if key not in m:
            if default is None:
                self.error(m, None, path, f"missing: one of {', '.join(choices)}")
            return default
        value = m[key]
        return self._one_choice(value, m.line_of(key), path, choices)

    def _one_choice(
        self,
        value: object,
        line: int,
        path: str,
        choices: Sequence[str],
        elsewhere: Mapping[str, str] | None = None,
    ) -> str | None:
        if isinstance(value, str):
            for choice in choices:
                if choice.lower() == value.strip().lower():
                    return choice
            why = (elsewhere or {}).get(value.strip().lower())
            if why:
                self.error_at(self.file, line, path, f"{value!r} {why}")
                return None
            self.error_at(
                self.file,
                line,
                path,
                f"{value!r} is not one of {', '.join(choices)}{did_you_mean(value, choices)}",
            )
            return None
        self.error_at(
            self.file, line, path, f"expected one of {', '.join(choices)}, got {describe(value)}"
        )
        return None

    def choices(
        self,
        m: MarkedMap,
        key: str,
        path: str,
        choices: Sequence[str],
        *,
        default: str,
        elsewhere: Mapping[str, str] | None = None,
    ) -> tuple[str, ...] | None:
        """One value or a list of values, in preference order.

        ``elsewhere`` maps values that are valid in other places (lower case) to
        the reason they are not valid here.
        """
        if key not in m:
            return (default,)
        value = m[key]
        if isinstance(value, MarkedList):
            if not value:
                self.error(m, key, path, "list at least one value")
                return None
            picked = [
                self._one_choice(item, value.line_of(i), f"{path}[{i}]", choices, elsewhere)
                for i, item in enumerate(value)
            ]
            if any(p is None for p in picked):
                return None
            return tuple(p for p in picked if p is not None)
        single = self._one_choice(value, m.line_of(key), path, choices, elsewhere)
        return None if single is None else (single,)

    # -- names and templates ----------------------------------------------

    def placeholders(
        self, m: MarkedMap, key: str, path: str, text: str, allowed: Sequence[str]
    ) -> bool:
        ok = True
        for found in PLACEHOLDER_LIKE.findall(text):
            if found not in allowed:
                hint = did_you_mean(found, allowed)
                where = f"here only {', '.join(allowed)}" if allowed else "no placeholder here"
                if found in PLACEHOLDERS:
                    self.error(m, key, path, f"{found} is not allowed: {where}")
                else:
                    self.error(m, key, path, f"unknown placeholder {found!r}{hint}")
                ok = False
        return ok

    def template(self, m: MarkedMap, key: str, path: str, *, default: str) -> str | None:
        """A string that may carry any of the placeholders (a user name)."""
        if key not in m:
            return default
        value = self.string(m, key, path)
        if value is None or not self.placeholders(m, key, path, value, PLACEHOLDERS):
            return None
        return value

    def hostname(
        self,
        m: MarkedMap,
        key: str,
        path: str,
        *,
        default: str | None = None,
        placeholders: Sequence[str] = (),
    ) -> str | None:
        if key not in m:
            if default is None:
                self.error(m, None, path, "missing: a host name")
            return default
        value = self.string(m, key, path)
        if value is None or not self.placeholders(m, key, path, value, placeholders):
            return None
        host, problem = check_hostname(value, placeholders)
        if problem:
            self.error(m, key, path, problem)
            return None
        return host

    def url(self, m: MarkedMap, key: str, path: str, *, required: bool = False) -> str | None:
        value = self.string(m, key, path, required=required)
        if value is None or not self.placeholders(m, key, path, value, PLACEHOLDERS):
            return None
        if any(ch.isspace() for ch in value):
            self.error(m, key, path, f"{value!r} is not a URL (it contains white space)")
            return None
        try:
            parts = urlsplit(value)
            netloc_host = parts.hostname
            parts.port  # noqa: B018 -- raises ValueError on a bad port
        except ValueError as exc:
            self.error(m, key, path, f"{value!r} is not a URL ({exc})")
            return None
        if parts.scheme not in ("https", "http") or not netloc_host:
            self.error(m, key, path, f"{value!r} is not an https:// URL")
            return None
        _, problem = check_hostname(netloc_host, PLACEHOLDERS)
        if problem:
            self.error(m, key, path, f"{value!r}: {problem}")
            return None
        if parts.scheme == "http":
            self.warning(m, key, path, f"{value!r} uses http; clients may refuse it, use https")
        return value

    def language_texts(
        self, m: MarkedMap, key: str, path: str
    ) -> tuple[tuple[str, str], ...] | None:
        """``text: "..."`` (English) or ``text: {en: "...", de: "..."}``."""
        if key not in m:
            self.error(m, None, path, "missing: a text, or texts by language")
            return None
        value = m[key]
        if isinstance(value, str):
            return (("en", value),)
        texts = self.mapping(value, path, m.line_of(key))
        if texts is None:
            return None
        result = []
        for lang, text in texts.items():
            # Language tags compare without regard to case (RFC 5646): DE is de.
            if not re.fullmatch(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*", lang):
                self.error_at(
                    self.file,
                    texts.key_lines[lang],
                    f"{path}.{lang}",
                    "not a language code such as en or de",
                )
            elif not isinstance(text, str):
                self.error(
                    texts, lang, f"{path}.{lang}", f"expected a string, got {describe(text)}"
                )
            else:
                result.append((lang, text))
        return tuple(result)


def check_hostname(value: str, placeholders: Sequence[str] = ()) -> tuple[str, str | None]:
    """Return (normalised host, problem or None); placeholders may stand for labels."""
    used = [p for p in placeholders if p in value]
    if not used:
        try:
            return normalize_domain(value), None
        except InvalidDomain:
            return value, f"{value!r} is not a valid host name"
    if not value.isascii():
        return value, f"{value!r}: write the non-ASCII part in its xn-- form"
    pieces = re.split("(" + "|".join(map(re.escape, used)) + ")", value.strip())
    host = "".join(p if p in used else p.lower() for p in pieces).removesuffix(".")
    probe = host
    for placeholder in used:
        probe = probe.replace(placeholder, "example.com")
    bad = [label for label in probe.split(".") if not _HOST_LABEL.match(label)]
    if bad:
        return value, f"{value!r} is not a valid host name (label {bad[0]!r})"
    return host, None
