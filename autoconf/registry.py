"""The domain folder, loaded into an immutable snapshot: domain -> provider.

A snapshot is built whole and never changed, so that a reload can build the
next one beside it and swap a single reference: requests need no locks.
A broken file is skipped (its errors are kept for ``/healthz`` and ``check``);
the other files serve.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Generic, TypeVar

from autoconf import yamlio
from autoconf.errors import ConfigError
from autoconf.lint import lint
from autoconf.model import (
    CATCH_ALL,
    WILDCARD_PREFIX,
    DomainSource,
    Provider,
    Server,
    build_provider,
)

T = TypeVar("T")
DOMAIN_FILE_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True, slots=True)
class BrokenFile:
    file: str
    errors: tuple[ConfigError, ...]
    serving_last_good: bool = False  # an earlier valid version still serves


# What identifies a version of a file without reading it: (mtime_ns, size, inode)
# of the file and of the domains_from file it names.
Signature = tuple[tuple[int, int, int], ...]


@dataclass(frozen=True, slots=True)
class LoadedFile:
    """A domain file as last read."""

    dependencies: tuple[Path, ...]  # the file, and the domains_from file it names
    signature: Signature  # of the dependencies, as they were read
    current: Provider | None  # this version, when it is valid
    last_good: Provider | None  # the newest valid version seen, for a reload to fall back on
    problems: tuple[ConfigError, ...]  # of this version: errors, or lint warnings


@dataclass(frozen=True, slots=True)
class FolderResult:
    """Everything read from a folder: providers to serve, broken files, all problems."""

    providers: tuple[Provider, ...]
    broken: tuple[BrokenFile, ...]
    problems: tuple[ConfigError, ...]  # errors and lint warnings, in file and line order
    files: int
    states: Mapping[str, LoadedFile] = field(default_factory=dict)
    changed: tuple[str, ...] = ()  # files read anew (new or changed since the last load)
    removed: tuple[str, ...] = ()

    @property
    def errors(self) -> list[ConfigError]:
        return [p for p in self.problems if p.is_error]

    @property
    def warnings(self) -> list[ConfigError]:
        return [p for p in self.problems if not p.is_error]


def domain_files(folder: Path) -> list[Path]:
    """The domain files of a folder, in name order; hidden and editor files are left out."""
    # os.scandir knows each entry's type without a stat of its own (100,000 files).
    with os.scandir(folder) as entries:
        names = sorted(
            entry.name
            for entry in entries
            if entry.name.endswith(DOMAIN_FILE_SUFFIXES)
            and not entry.name.startswith(".")
            and entry.is_file()
        )
    return [folder / name for name in names]


def folder_mark(folder: Path, dependencies: tuple[Path, ...] = ()) -> int:
    """A digest of what the folder's domain files (and the domains_from files they
    name) are now: names, modification times, sizes and inodes. The same digest as
    at the last reload means there is nothing to read.

    A poll that compares this one value touches none of the loaded objects. Under
    gunicorn that matters: the workers share the master's loaded pages only until
    they write to them, and Python writes to every object it takes a reference to.
    So the digest is a sum of one hash per file, in any order, made with nothing
    kept per file: no list of 100,000 entries to allocate among the shared pages.
    """
    total = 0
    with os.scandir(folder) as entries:
        for entry in entries:
            name = entry.name
            if not name.endswith(DOMAIN_FILE_SUFFIXES) or name.startswith("."):
                continue
            try:
                if not entry.is_file():
                    continue
                info = entry.stat()
            except OSError:
                total += _mark_of(name, (0, 0, 0))
            else:
                total += _mark_of(name, (info.st_mtime_ns, info.st_size, info.st_ino))
    for path, mark in zip(dependencies, _signature(list(dependencies)), strict=True):
        total += _mark_of(str(path), mark)
    return total % _MARK_MODULUS


_MARK_MODULUS = 1 << 128


def _mark_of(name: str, mark: tuple[int, int, int]) -> int:
    text = f"{name}\0{mark[0]}\0{mark[1]}\0{mark[2]}"
    digest = hashlib.blake2b(text.encode("utf-8", "surrogateescape"), digest_size=16).digest()
    return int.from_bytes(digest, "big")


def _signature(paths: list[Path]) -> Signature:
    marks = []
    for path in paths:
        try:
            info = path.stat()
        except OSError:
            marks.append((0, 0, 0))
        else:
            marks.append((info.st_mtime_ns, info.st_size, info.st_ino))
    return tuple(marks)


def _dependencies(path: Path, tree: object) -> list[Path]:
    """The file itself and the domains_from file it names, whose changes a reload must see."""
    named = tree.get("domains_from") if isinstance(tree, yamlio.MarkedMap) else None
    return [path, path.parent / named] if isinstance(named, str) else [path]


def _parse(path: Path) -> tuple[Provider | None, list[ConfigError], list[Path]]:
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return None, [ConfigError(file, 1, "(file)", f"not UTF-8 text ({exc.reason})")], [path]
    except OSError as exc:
        reason = f"cannot read: {exc.strerror or exc}"
        return None, [ConfigError(file, 1, "(file)", reason)], [path]
    tree, problems = yamlio.load(text, file)
    dependencies = _dependencies(path, tree)
    if tree is None:
        return None, problems, dependencies
    provider, more = build_provider(tree, file, path.parent)
    problems += more
    if any(p.is_error for p in problems):
        return None, problems, dependencies
    assert provider is not None
    return provider, problems + lint(provider), dependencies


def load_file(path: Path) -> tuple[Provider | None, list[ConfigError]]:
    """Read, parse and validate one file; lint it when it is valid."""
    provider, problems, _ = _parse(path)
    return provider, problems


def _interned(provider: Provider | None, pool: dict[Server, Server]) -> Provider | None:
    """The provider with servers equal to ones already loaded replaced by those.

    A hoster's one-domain files name the same servers again and again; sharing
    them keeps 100,000 such files in memory at the cost of one. (Server equality
    leaves out where in its file a server was written: lint has used that already.)
    """
    if provider is None:
        return None
    incoming = tuple(pool.setdefault(s, s) for s in provider.incoming)
    outgoing = tuple(pool.setdefault(s, s) for s in provider.outgoing)
    return replace(provider, incoming=incoming, outgoing=outgoing)


def _read(
    path: Path, previous: LoadedFile | None, pool: dict[Server, Server]
) -> tuple[LoadedFile, bool]:
    """The file as it is now, and whether it had to be read (it is new or changed)."""
    if previous is not None and _signature(list(previous.dependencies)) == previous.signature:
        return previous, False
    # Stat, then read: a write that lands during the read differs from this
    # signature, and the next reload reads the file again.
    before = _signature([path])
    provider, problems, dependencies = _parse(path)
    provider = _interned(provider, pool)
    signature = before + _signature(dependencies[1:])
    last_good = provider or (previous.last_good if previous else None)
    state = LoadedFile(tuple(dependencies), signature, provider, last_good, tuple(problems))
    return state, True


@dataclass(frozen=True, slots=True)
class Scan:
    """The folder's files as they are now, and what differs from the previous scan."""

    states: Mapping[str, LoadedFile]
    changed: tuple[str, ...]  # new or changed: read anew
    removed: tuple[str, ...]


def scan_folder(folder: Path, previous: Mapping[str, LoadedFile] | None = None) -> Scan:
    """Read the new and changed files; a file whose signature is unchanged is not opened."""
    previous = previous or {}
    states: dict[str, LoadedFile] = {}
    changed = []
    pool: dict[Server, Server] = {}
    for path in domain_files(folder):
        state, fresh = _read(path, previous.get(str(path)), pool)
        states[str(path)] = state
        if fresh:
            changed.append(str(path))
    removed = tuple(sorted(previous.keys() - states.keys()))
    return Scan(states, tuple(changed), removed)


def load_folder(folder: Path, previous: Mapping[str, LoadedFile] | None = None) -> FolderResult:
    """Load every file (only new and changed ones when ``previous`` is given)."""
    return resolve(scan_folder(folder, previous), previous or {})


def resolve(scan: Scan, previous: Mapping[str, LoadedFile]) -> FolderResult:
    """Which version of each file serves, and which files are broken.

    A file whose current version is broken serves its last good version, if
    it had one. A domain claimed by a second file makes that file broken; the
    file that served the domain before keeps it, then name order decides.
    """
    states = scan.states
    # Files that served before choose first, so that a new claim cannot take
    # a domain away from a file that has it.
    served_before = [f for f in states if f in previous and previous[f].last_good]
    first = set(served_before)
    order = served_before + [f for f in states if f not in first]
    claimed: dict[str, DomainSource] = {}
    serving: dict[str, Provider] = {}
    broken: list[BrokenFile] = []
    problems: list[ConfigError] = []
    for file in order:
        state = states[file]
        file_problems = list(state.problems)
        chosen = state.current
        if chosen is not None:
            conflicts = _claim(chosen, claimed)
            file_problems += conflicts
            if conflicts:
                chosen = None
        errors = tuple(p for p in file_problems if p.is_error)
        if chosen is None and state.last_good is not None and state.last_good is not state.current:
            if not _claim(state.last_good, claimed):
                chosen = state.last_good
        if chosen is not None:
            serving[file] = chosen
        if errors:
            broken.append(BrokenFile(file, errors, serving_last_good=chosen is not None))
        problems += file_problems
    problems.sort(key=lambda p: (p.file, p.line))
    broken.sort(key=lambda b: b.file)
    providers = tuple(serving[f] for f in states if f in serving)
    return FolderResult(
        providers, tuple(broken), tuple(problems), len(states), states, scan.changed, scan.removed
    )


def _claim(provider: Provider, claimed: dict[str, DomainSource]) -> list[ConfigError]:
    conflicts = [
        ConfigError(
            source.file,
            source.line,
            source.path,
            f"{domain} is already claimed by {claimed[domain].file}:{claimed[domain].line}",
        )
        for domain, source in zip(provider.domains, provider.domain_sources, strict=True)
        if domain in claimed
    ]
    if not conflicts:
        for domain, source in zip(provider.domains, provider.domain_sources, strict=True):
            claimed[domain] = source
    return conflicts


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


def _parents(domain: str) -> Iterator[str]:
    """``a.b.example.com`` -> ``b.example.com``, ``example.com``, ``com``."""
    rest = domain
    while "." in rest:
        rest = rest.split(".", 1)[1]
        yield rest


def build_snapshot(result: FolderResult, compile: Callable[[Provider], T]) -> Snapshot[T]:
    """Compile each valid provider once and index it by every domain it claims."""
    exact: dict[str, Entry[T]] = {}
    wildcards: dict[str, Entry[T]] = {}
    catch_all: Entry[T] | None = None
    entries = []
    for provider in result.providers:
        entry = Entry(provider, compile(provider))
        entries.append(entry)
        for domain in provider.domains:
            if domain == CATCH_ALL:
                catch_all = entry
            elif domain.startswith(WILDCARD_PREFIX):
                wildcards[domain[len(WILDCARD_PREFIX) :]] = entry
            else:
                exact[domain] = entry
    return Snapshot(
        MappingProxyType(exact),
        MappingProxyType(wildcards),
        catch_all,
        tuple(entries),
        result.broken,
    )


@dataclass(frozen=True, slots=True)
class Changes:
    """What a reload changed, by domain (patterns such as ``*.example.com`` included)."""

    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    read: tuple[str, ...] = ()  # files read anew
    problems: tuple[ConfigError, ...] = ()  # of the files read anew

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed or self.read)


def _by_domain(snapshot: Snapshot[T]) -> dict[str, Provider]:
    found = {domain: entry.provider for domain, entry in snapshot.exact.items()}
    found |= {f"*.{suffix}": entry.provider for suffix, entry in snapshot.wildcards.items()}
    if snapshot.catch_all is not None:
        found[CATCH_ALL] = snapshot.catch_all.provider
    return found


class Registry(Generic[T]):
    """The current snapshot of a folder, and the reload that replaces it whole.

    Readers take ``registry.snapshot`` once per request and use it throughout,
    so a reload running beside them never changes what they see. Unchanged
    files are neither read nor compiled again.
    """

    def __init__(self, folder: Path, compile: Callable[[Provider], T]) -> None:
        self.folder = folder
        self._compile = compile
        self._states: Mapping[str, LoadedFile] = {}
        self._mark = -1  # folder_mark() as of the last reload
        self._dependencies: tuple[Path, ...] = ()  # the domains_from files named
        self._compiled: dict[int, tuple[Provider, T]] = {}
        self._lock = threading.Lock()  # one reload at a time
        self.snapshot: Snapshot[T] = Snapshot(MappingProxyType({}), MappingProxyType({}), None, ())
        self.last_result: FolderResult | None = None

    def _compiled_for(self, provider: Provider) -> T:
        cached = self._compiled.get(id(provider))
        if cached is not None and cached[0] is provider:
            return cached[1]
        compiled = self._compile(provider)
        self._compiled[id(provider)] = (provider, compiled)
        return compiled

    def watched_folders(self) -> set[Path]:
        """The folder, and the folders of the domains_from files its files name."""
        return {self.folder, *(path.parent for path in self._dependencies)}

    def reload(self) -> Changes:
        with self._lock:
            # Marked before the scan: a change made while it runs shows next time.
            mark = folder_mark(self.folder, self._dependencies)
            if mark == self._mark and self.last_result is not None:
                return Changes()  # the common case: a poll that found nothing new
            scan = scan_folder(self.folder, self._states)
            self._mark = mark
            self._dependencies = tuple(
                sorted({d for state in scan.states.values() for d in state.dependencies[1:]})
            )
            if not scan.changed and not scan.removed and self.last_result is not None:
                self._states = scan.states
                return Changes()  # the mark moved, no file did (a domains_from file is new to it)
            result = resolve(scan, self._states)
            self._states = result.states
            snapshot = build_snapshot(result, self._compiled_for)
            live = {id(p) for p in result.providers}
            self._compiled = {k: v for k, v in self._compiled.items() if k in live}
            old, new = _by_domain(self.snapshot), _by_domain(snapshot)
            read_anew = set(result.changed)
            changes = Changes(
                added=tuple(sorted(new.keys() - old.keys())),
                changed=tuple(sorted(d for d in new.keys() & old.keys() if new[d] is not old[d])),
                removed=tuple(sorted(old.keys() - new.keys())),
                read=result.changed,
                problems=tuple(p for p in result.problems if p.file in read_anew),
            )
            self.snapshot = snapshot  # the swap: one reference, taken whole by readers
            self.last_result = result
            return changes
