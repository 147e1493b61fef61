"""The domain folder, loaded into an immutable snapshot: domain -> provider.

A snapshot is built whole and never changed, so that a reload can build the
next one beside it and swap a single reference: requests need no locks.
A broken file is skipped (its errors are kept for ``/healthz`` and ``check``);
the other files serve.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Generic, TypeVar

from autoconf import yamlio
from autoconf.errors import ConfigError
from autoconf.lint import lint
from autoconf.model import CATCH_ALL, WILDCARD_PREFIX, DomainSource, Provider, build_provider

T = TypeVar("T")
DOMAIN_FILE_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True, slots=True)
class BrokenFile:
    file: str
    errors: tuple[ConfigError, ...]


@dataclass(frozen=True, slots=True)
class FolderResult:
    """Everything read from a folder: valid providers, broken files, all problems."""

    providers: tuple[Provider, ...]
    broken: tuple[BrokenFile, ...]
    problems: tuple[ConfigError, ...]  # errors and lint warnings, in file and line order
    files: int

    @property
    def errors(self) -> list[ConfigError]:
        return [p for p in self.problems if p.is_error]

    @property
    def warnings(self) -> list[ConfigError]:
        return [p for p in self.problems if not p.is_error]


def domain_files(folder: Path) -> list[Path]:
    """The domain files of a folder, in name order; hidden and editor files are left out."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.suffix in DOMAIN_FILE_SUFFIXES and not p.name.startswith(".") and p.is_file()
    )


def load_file(path: Path) -> tuple[Provider | None, list[ConfigError]]:
    """Read, parse and validate one file; lint it when it is valid."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return None, [ConfigError(file, 1, "(file)", f"not UTF-8 text ({exc.reason})")]
    except OSError as exc:
        return None, [ConfigError(file, 1, "(file)", f"cannot read: {exc.strerror or exc}")]
    tree, problems = yamlio.load(text, file)
    if tree is None:
        return None, problems
    provider, more = build_provider(tree, file, path.parent)
    problems += more
    if problems and any(p.is_error for p in problems):
        return None, problems
    assert provider is not None
    return provider, problems + lint(provider)


def load_folder(folder: Path) -> FolderResult:
    """Load every file; a domain claimed by a second file makes that file broken."""
    providers: list[Provider] = []
    broken: list[BrokenFile] = []
    problems: list[ConfigError] = []
    claimed: dict[str, DomainSource] = {}
    files = domain_files(folder)
    for path in files:
        provider, file_problems = load_file(path)
        if provider is not None:
            file_problems += _claim(provider, claimed)
        errors = tuple(p for p in file_problems if p.is_error)
        problems += file_problems
        if errors or provider is None:
            broken.append(BrokenFile(str(path), errors))
        else:
            providers.append(provider)
    problems.sort(key=lambda p: (p.file, p.line))
    return FolderResult(tuple(providers), tuple(broken), tuple(problems), len(files))


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
