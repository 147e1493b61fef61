"""The domains a file serves: its ``domains:`` list and its ``domains_from`` file.

:func:`read_domains` checks every entry (normalised, no wildcard on a public
suffix, repeats warned of) and records where each one was written, so that a
problem or a conflict can name its line. A hoster's generated list of a
million plain domains skips the checks one by one (:func:`_simple_list`).
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path

from autoconf import typed_read as read
from autoconf.address import MAX_DOMAIN, InvalidDomain
from autoconf.lookup.domains import fetch_registered, is_query
from autoconf.lookup.sources import LookupFailed
from autoconf.model import (
    CATCH_ALL,
    WILDCARD_PREFIX,
    DomainOrigins,
    is_public_suffix,
    normalize_domain_pattern,
)
from autoconf.typed_read import Node
from autoconf.values import describe


class ListUnreadable(Exception):
    """A domains_from file that cannot be read; the message says why."""


# A domains_query's list read without the folder's limits (tests and tools).
MAX_QUERY_BYTES = 64 * 1024 * 1024


def read_query(name: str, max_bytes: int) -> tuple[str, str]:
    """A lookup's domains_query as a list: (its name for messages, its text)."""
    try:
        return "domains_query", fetch_registered(name, max_bytes)
    except LookupFailed as exc:
        raise ListUnreadable(f"lookup.postgresql.domains_query: {exc}") from None


# Reads a domains_from file: (its name as messages show it, its text), or
# ListUnreadable with the reason.
ReadList = Callable[[str], tuple[str, str]]


def read_list_beside(base_dir: Path) -> ReadList:
    """A ReadList for a file in ``base_dir``, unbounded (for tests and tools)."""

    def read_file(name: str) -> tuple[str, str]:
        if is_query(name):
            return read_query(name, MAX_QUERY_BYTES)
        path = base_dir / name
        try:
            return str(path), path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror.lower() if isinstance(exc, OSError) and exc.strerror else exc
            raise ListUnreadable(f"cannot read {path}: {reason}") from None

    return read_file


def read_domains(
    root: Node,
    read_list: ReadList,
    known: Collection[str] = (),
    queried: Callable[[], tuple[str, str]] | None = None,
) -> tuple[list[str], DomainOrigins, list[str]]:
    """(the domains, where each was written, those that are patterns: ``*`` or ``*.suffix``).

    ``known`` are domains a previous version of the file listed, valid as they
    are: a list line equal to one of them needs no check of its own. ``queried``
    reads the list of the lookup's domains_query instead of a domains_from file.
    """
    problems = root.problems
    domains: list[str] = []
    patterns: list[str] = []
    lines = array("I")
    indexes = array("i")
    seen: dict[str, tuple[str, int]] = {}

    def add(raw: object, file: str, line: int, index: int) -> None:
        path = f"domains[{index}]" if index >= 0 else "domains_from"
        if not isinstance(raw, str):
            problems.error(line, path, f"expected a domain name, got {describe(raw)}", file)
            return
        try:
            domain = normalize_domain_pattern(raw)
        except InvalidDomain as exc:
            problems.error(line, path, str(exc), file)
            return
        if domain.startswith(WILDCARD_PREFIX) and is_public_suffix(domain[2:]):
            message = (
                f"{domain}: a wildcard on a public suffix ({domain[2:]}) would take every "
                "domain under it; list the domains, or use '*' for a catch-all"
            )
            problems.error(line, path, message, file)
            return
        first = seen.get(domain)
        if first is not None:
            message = f"{domain} is listed twice (also {first[0]}:{first[1]})"
            problems.warning(line, path, message, file)
            return
        seen[domain] = (file, line)
        if domain.startswith(CATCH_ALL):
            patterns.append(domain)
        domains.append(domain)
        lines.append(line)
        indexes.append(index)

    listed = read.items(root, "domains")
    for index, raw in enumerate(listed or ()):
        add(raw, problems.file, listed.line_of(index) if listed else 0, index)

    list_file = ""
    from_file = read.string(root, "domains_from")
    if from_file is not None or queried is not None:
        try:
            list_file, text = read_list(from_file) if from_file is not None else queried()  # type: ignore[misc]
        except ListUnreadable as exc:
            root.error("domains_from" if from_file is not None else "lookup", str(exc))
        else:
            fast = _simple_list(text, seen, known)
            if fast is not None:  # a list of plain domains, one a line: no checks one by one
                domains.extend(fast)
                lines.extend(range(1, len(fast) + 1))
                indexes.extend(array("i", [-1]) * len(fast))
            else:
                for number, line in enumerate(text.splitlines(), start=1):
                    entry = line.split("#", 1)[0].strip()
                    if entry:
                        add(entry, list_file, number, -1)

    if "domains" not in root and "domains_from" not in root and queried is None:
        root.missing("domains", "missing: list at least one domain")
    elif not domains and not problems.has_errors:
        root.error("domains", "list at least one domain")
    origins = DomainOrigins(problems.file, list_file, _compact(lines), _compact(indexes))
    return domains, origins, patterns


def _compact(numbers: array[int]) -> Sequence[int]:
    return tuple(numbers) if len(numbers) <= 64 else numbers


# One line of a plain list: lower-case letters, digits and hyphens in labels of
# 1 to 63, at least two labels, no "--" (IDNA rules apply there, and to "xn--"),
# nothing else.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_PLAIN_LIST = re.compile(rf"(?>(?>{_LABEL}\.)+{_LABEL}\n)*+", re.ASCII)


def _simple_list(
    text: str, seen: Mapping[str, object], known: Collection[str] = ()
) -> list[str] | None:
    """The domains of a list that is only plain lower-case domains, one a line,
    ending with a line feed, with no repeats and none also in ``domains:``; else
    None, and the list is read line by line. A hoster's generated list of a
    million domains takes this path: its lines are checked by one regular
    expression over the whole text, or, when the previous version's domains are
    ``known``, only the lines that are new (a one-line change checks one line)."""
    if not text.endswith("\n") or "--" in text or not text.isascii():
        return None
    found = text[:-1].split("\n")
    unique = set(found)
    if len(unique) != len(found):
        return None
    if known:
        fresh = unique.difference(known)
        if fresh and _PLAIN_LIST.fullmatch("\n".join(fresh) + "\n") is None:
            return None
        longest = max(map(len, fresh), default=0)
    else:
        if _PLAIN_LIST.fullmatch(text) is None:
            return None
        longest = max(map(len, found))
    if longest > MAX_DOMAIN:
        return None
    if seen and not unique.isdisjoint(seen):
        return None
    return found
