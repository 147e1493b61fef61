"""Typed reads from a marked YAML tree that record every problem with its line.

A :class:`Node` is a mapping of the file together with its key path and the
file's :class:`Problems`; each reader takes a node and a key, builds the key's
path from the node's (``incoming[0]`` and ``port`` make ``incoming[0].port``),
and returns the value, or None when the key is absent or the value is wrong.
A wrong value is recorded, never raised, so that one pass over a file finds
everything that is wrong with it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from autoconf import values
from autoconf.errors import Problem, Severity
from autoconf.values import Invalid, describe, did_you_mean
from autoconf.yamlio import MarkedList, MarkedMap


@dataclass(slots=True)
class Problems:
    """The problems found in one file (and the list files it names)."""

    file: str
    found: list[Problem] = field(default_factory=list)

    def error(self, line: int, path: str, message: str, file: str | None = None) -> None:
        self.found.append(Problem(file or self.file, line, path, message))

    def warning(self, line: int, path: str, message: str, file: str | None = None) -> None:
        self.found.append(Problem(file or self.file, line, path, message, Severity.WARNING))

    @property
    def has_errors(self) -> bool:
        return any(p.is_error for p in self.found)


@dataclass(frozen=True, slots=True)
class Node:
    """A mapping of the file, its key path (``""`` at the root) and the file's problems."""

    map: MarkedMap
    path: str
    problems: Problems

    def __contains__(self, key: str) -> bool:
        return key in self.map

    def path_of(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str | None, message: str) -> None:
        """An error about the value at ``key`` (or the node itself), at its line."""
        if key is None:
            self.problems.error(self.map.line, self.path or "(root)", message)
        else:
            self.problems.error(self.map.line_of(key), self.path_of(key), message)

    def warning(self, key: str, message: str) -> None:
        self.problems.warning(self.map.line_of(key), self.path_of(key), message)

    def missing(self, key: str, message: str) -> None:
        """``key`` is absent: the error stands at the node's own line."""
        self.problems.error(self.map.line, self.path_of(key), message)

    def invalid(self, key: str, exc: Invalid) -> None:
        for message in exc.messages:
            self.error(key, message)


def mapping(problems: Problems, value: object, path: str, line: int) -> Node | None:
    if isinstance(value, MarkedMap):
        return Node(value, path, problems)
    problems.error(line, path or "(root)", f"expected a mapping of keys, got {describe(value)}")
    return None


def keys(node: Node, allowed: Sequence[str]) -> None:
    for key in node.map:
        if key not in allowed:
            node.error(key, f"unknown key{did_you_mean(key, allowed)}")


def child(node: Node, key: str) -> Node | None:
    """The mapping at ``key``, or None when it is absent or not a mapping."""
    if key not in node.map:
        return None
    return mapping(node.problems, node.map[key], node.path_of(key), node.map.line_of(key))


def items(node: Node, key: str) -> MarkedList | None:
    """The list at ``key``, or None when it is absent or not a list."""
    if key not in node.map:
        return None
    value = node.map[key]
    if isinstance(value, MarkedList):
        return value
    node.error(key, f"expected a list, got {describe(value)}")
    return None


def entries(node: Node, key: str) -> Iterator[Node]:
    """The mappings listed at ``key`` (``key[0]``, ``key[1]``…); other items are errors."""
    listed = items(node, key)
    for index, value in enumerate(listed or ()):
        path = f"{node.path_of(key)}[{index}]"
        entry = mapping(node.problems, value, path, listed.line_of(index) if listed else 0)
        if entry is not None:
            yield entry


# -- scalars -----------------------------------------------------------------


def _typed(node: Node, key: str, kind: type, what: str) -> Any:
    if key not in node.map:
        return None
    value = node.map[key]
    # bool is a subclass of int, but `port: yes` is never meant as a number.
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    node.error(key, f"expected {what}, got {describe(value)}")
    return None


def string(node: Node, key: str, *, required: bool = False) -> str | None:
    value: str | None = _typed(node, key, str, "a string")
    if value is None and required and key not in node.map:
        node.missing(key, "missing: required")
    if value is not None and not value.strip():
        node.error(key, "must not be empty")
        return None
    return value


def boolean(node: Node, key: str) -> bool | None:
    value: bool | None = _typed(node, key, bool, "true or false")
    return value


def integer(node: Node, key: str, *, minimum: int, maximum: int) -> int | None:
    value: int | None = _typed(node, key, int, "a whole number")
    if value is not None and not minimum <= value <= maximum:
        node.error(key, f"{value} is out of range ({minimum} to {maximum})")
        return None
    return value


def port(node: Node, key: str) -> int | None:
    return integer(node, key, minimum=1, maximum=65535)


def choice(
    node: Node,
    key: str,
    choices: Sequence[str],
    *,
    default: str | None = None,
    elsewhere: Mapping[str, str] | None = None,
) -> str | None:
    if key not in node.map:
        if default is None:
            node.missing(key, f"missing: one of {', '.join(choices)}")
        return default
    try:
        return values.one_choice(node.map[key], choices, elsewhere)
    except Invalid as exc:
        node.invalid(key, exc)
        return None


def choices(
    node: Node,
    key: str,
    choices: Sequence[str],
    *,
    default: str,
    elsewhere: Mapping[str, str] | None = None,
) -> tuple[str, ...] | None:
    """One value or a list of values, in preference order (see :func:`values.one_choice`)."""
    if key not in node.map:
        return (default,)
    value = node.map[key]
    if not isinstance(value, MarkedList):
        try:
            return (values.one_choice(value, choices, elsewhere),)
        except Invalid as exc:
            node.invalid(key, exc)
            return None
    if not value:
        node.error(key, "list at least one value")
        return None
    picked = []
    for index, item in enumerate(value):
        try:
            picked.append(values.one_choice(item, choices, elsewhere))
        except Invalid as exc:
            path = f"{node.path_of(key)}[{index}]"
            node.problems.error(value.line_of(index), path, exc.messages[0])
    return tuple(picked) if len(picked) == len(value) else None


# -- names and templates -----------------------------------------------------


def template(node: Node, key: str, *, default: str) -> str | None:
    """A string that may carry any of the placeholders (a user name)."""
    if key not in node.map:
        return default
    text = string(node, key)
    if text is None:
        return None
    try:
        return values.template(text)
    except Invalid as exc:
        node.invalid(key, exc)
        return None


def hostname(
    node: Node, key: str, *, default: str | None = None, placeholders: Sequence[str] = ()
) -> str | None:
    if key not in node.map:
        if default is None:
            node.missing(key, "missing: a host name")
        return default
    text = string(node, key)
    if text is None:
        return None
    try:
        return values.hostname(text, placeholders)
    except Invalid as exc:
        node.invalid(key, exc)
        return None


def url(node: Node, key: str, *, required: bool = False) -> str | None:
    text = string(node, key, required=required)
    if text is None:
        return None
    try:
        checked, warning = values.url(text)
    except Invalid as exc:
        node.invalid(key, exc)
        return None
    if warning:
        node.warning(key, warning)
    return checked


def language_texts(node: Node, key: str) -> tuple[tuple[str, str], ...] | None:
    """``text: "..."`` (English) or ``text: {en: "...", de: "..."}``."""
    if key not in node.map:
        node.missing(key, "missing: a text, or texts by language")
        return None
    if isinstance(node.map[key], str):
        return (("en", node.map[key]),)
    texts = child(node, key)
    if texts is None:
        return None
    result = []
    for lang, text in texts.map.items():
        try:
            values.language_tag(lang)
        except Invalid as exc:
            texts.invalid(lang, exc)
            continue
        if not isinstance(text, str):
            texts.error(lang, f"expected a string, got {describe(text)}")
        else:
            result.append((lang, text))
    return tuple(result)
