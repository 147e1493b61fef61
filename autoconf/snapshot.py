"""What the service answers from: an immutable index, domain -> provider.

A snapshot is built whole and never changed, so that a reload can build the
next one beside it and swap a single reference: requests need no locks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Generic, TypeVar

from autoconf.model import CATCH_ALL, WILDCARD_PREFIX, Provider
from autoconf.ownership import BrokenFile, Contest, FolderResult, Held

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Entry(Generic[T]):
    provider: Provider
    compiled: T


@dataclass(frozen=True)
class Snapshot(Generic[T]):
    """Domain -> entry; exact names first, then the nearest wildcard, then the catch-all."""

    exact: Mapping[str, Entry[T]]
    wildcards: Mapping[str, Entry[T]]  # "example.com" for "*.example.com"
    catch_all: Entry[T] | None
    entries: tuple[Entry[T], ...]
    broken: tuple[BrokenFile, ...] = field(default=())
    contests: tuple[Contest, ...] = field(default=())
    held: tuple[Held, ...] = field(default=())

    def lookup(self, domain: str) -> Entry[T] | None:
        """The entry for a normalised domain, or None."""
        entry = self.exact.get(domain)
        if entry is not None:
            return entry
        if self.wildcards:
            for suffix in _parents(domain):
                entry = self.wildcards.get(suffix)
                if entry is not None:
                    return entry
        return self.catch_all

    @property
    def domain_count(self) -> int:
        return len(self.exact) + len(self.wildcards) + (1 if self.catch_all else 0)

    def serves(self, pattern: str) -> bool:
        """Whether this domain or pattern (``*.example.com``, ``*``) is served as written."""
        if pattern == CATCH_ALL:
            return self.catch_all is not None
        if pattern.startswith(WILDCARD_PREFIX):
            return pattern[len(WILDCARD_PREFIX) :] in self.wildcards
        return pattern in self.exact

    def patterns(self) -> set[str]:
        """Every domain and pattern served (``*.example.com``, ``*``)."""
        found = set(self.exact)
        found.update(f"{WILDCARD_PREFIX}{suffix}" for suffix in self.wildcards)
        if self.catch_all is not None:
            found.add(CATCH_ALL)
        return found


EMPTY_SNAPSHOT: Snapshot[object] = Snapshot(MappingProxyType({}), MappingProxyType({}), None, ())


def _parents(domain: str) -> Iterator[str]:
    """``a.b.example.com`` -> ``b.example.com``, ``example.com``, ``com``."""
    rest = domain
    while "." in rest:
        rest = rest.split(".", 1)[1]
        yield rest


def build_snapshot(result: FolderResult, compile: Callable[[Provider], T]) -> Snapshot[T]:
    """Compile each serving provider once and index it by every domain it owns."""
    exact: dict[str, Entry[T]] = {}
    wildcards: dict[str, Entry[T]] = {}
    catch_all: Entry[T] | None = None
    entries = []
    for provider in result.providers:
        entry = Entry(provider, compile(provider))
        entries.append(entry)
        exact.update(dict.fromkeys(provider.domains, entry))  # done in C, for a million too
        for pattern in provider.patterns:
            del exact[pattern]
            if pattern == CATCH_ALL:
                catch_all = entry
            else:
                wildcards[pattern[len(WILDCARD_PREFIX) :]] = entry
    return Snapshot(
        MappingProxyType(exact),
        MappingProxyType(wildcards),
        catch_all,
        tuple(entries),
        result.broken,
        result.contests,
        result.held,
    )
