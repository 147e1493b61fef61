"""Reading a domain folder: which files it holds, what each says, what changed.

Every file is read through :mod:`autoconf.reading` (regular files inside the
allowed folders, within the size limits). A file that is unchanged since the
last scan (same modification time, change time, size and inode, of it and of
the domains_from file it names) is not opened again. What the files mean
together, which of them serves which domain, is :mod:`autoconf.ownership`'s.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from collections.abc import Collection, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from autoconf import yamlio
from autoconf.branding import MAX_LOGO_BYTES, AssetUnreadable
from autoconf.domain_file import build_provider
from autoconf.domain_list import ListUnreadable, read_query
from autoconf.errors import Problem
from autoconf.lint import lint
from autoconf.lookup.domains import is_query
from autoconf.lookup.domains import mark as query_mark
from autoconf.model import Provider, Server
from autoconf.pickling import dumps_shared, loads_shared, tuple_state
from autoconf.reading import Limits, ReadRefused, read_bounded

DOMAIN_FILE_SUFFIXES = (".yaml", ".yml")

# What identifies a version of a file without reading it: (mtime_ns, ctime_ns,
# size, inode) of the file and of the domains_from file it names. The change
# time cannot be set back by whoever writes the file.
Mark = tuple[int, int, int, int]
Signature = tuple[Mark, ...]
_MISSING: Mark = (0, 0, 0, 0)


@tuple_state
@dataclass(frozen=True, slots=True)
class LoadedFile:
    """A domain file as last read."""

    # The file, and the domains_from file it names: paths, kept as text (the state
    # folder keeps 100,000 of these, and a str unpickles much faster than a Path).
    dependencies: tuple[str, ...]
    signature: Signature  # of the dependencies, as they were read
    current: Provider | None  # this version, when it is valid
    last_good: Provider | None  # the newest valid version seen, for a reload to fall back on
    problems: tuple[Problem, ...]  # of this version: errors, or lint warnings

    @property
    def path(self) -> str:
        """The file's path, as messages show it."""
        return self.dependencies[0]


@dataclass(frozen=True, slots=True)
class Scan:
    """The folder's files as they are now, and what differs from the previous scan.

    Files are named by their names in the folder (``alpha.yaml``), not by a path:
    the same file is the same key whether the folder is given as ``domains``,
    ``./domains`` or an absolute path, by ``serve`` or by ``check``."""

    states: Mapping[str, LoadedFile]
    changed: tuple[str, ...]  # new or changed: read anew
    removed: tuple[str, ...]


def domain_files(folder: Path) -> list[Path]:
    """The domain files of a folder, in name order; hidden and editor files are
    left out, and so are folders. Anything else named ``*.yaml`` is listed, so that
    a FIFO or a device by that name is reported instead of silently skipped."""
    # os.scandir knows each entry's type without a stat of its own (100,000 files).
    with os.scandir(folder) as entries:
        names = sorted(
            entry.name
            for entry in entries
            if entry.name.endswith(DOMAIN_FILE_SUFFIXES)
            and not entry.name.startswith(".")
            and not entry.is_dir()
        )
    return [folder / name for name in names]


def folder_mark(folder: Path, dependencies: tuple[str, ...] = ()) -> int:
    """A digest of what the folder's domain files (and the domains_from files they
    name) are now: names, times, sizes and inodes. The same digest as at the last
    reload means there is nothing to read.

    A sum of one hash per file, in any order, made with nothing kept per file:
    the poll touches none of the loaded objects (whose pages the workers share).
    """
    total = 0
    with os.scandir(folder) as entries:
        for entry in entries:
            name = entry.name
            if not name.endswith(DOMAIN_FILE_SUFFIXES) or name.startswith("."):
                continue
            try:
                total += _mark_of(name, _mark(entry.stat()))
            except OSError:
                total += _mark_of(name, _MISSING)
    for path, mark in zip(dependencies, signature(list(dependencies)), strict=True):
        total += _mark_of(path, mark)
    return total % _MARK_MODULUS


_MARK_MODULUS = 1 << 128


def _mark_of(name: str, mark: Mark) -> int:
    text = f"{name}\0{mark[0]}\0{mark[1]}\0{mark[2]}\0{mark[3]}"
    digest = hashlib.blake2b(text.encode("utf-8", "surrogateescape"), digest_size=16).digest()
    return int.from_bytes(digest, "big")


def _mark(info: os.stat_result) -> Mark:
    return (info.st_mtime_ns, info.st_ctime_ns, info.st_size, info.st_ino)


def signature(paths: Sequence[str | Path], max_list_bytes: int = 64 << 20) -> Signature:
    """The marks of files; of a lookup's domains_query, a digest of its rows now."""
    marks = []
    for path in paths:
        if isinstance(path, str) and is_query(path):
            marks.append(query_mark(path, max_list_bytes))
            continue
        try:
            marks.append(_mark(os.stat(path)))
        except OSError:
            marks.append(_MISSING)
    return tuple(marks)


def _refused(file: str, reason: str) -> Problem:
    """``FILE: reason``: a refusal that concerns the whole file, not a line of it."""
    return Problem(file, 0, "", reason)


def parse_file(
    path: Path,
    limits: Limits,
    pool: dict[Server, Server] | None = None,
    known: Collection[str] = (),
) -> tuple[Provider | None, list[Problem], list[Path | str]]:
    """Read, parse and validate one file, lint it when it is valid; also the
    files it depends on (itself, and the domains_from file it names)."""
    file = str(path)
    try:
        data = read_bounded(path, limits.max_file_bytes, limits)
    except ReadRefused as exc:
        return None, [_refused(file, exc.reason)], [path]
    except OSError as exc:
        reason = f"cannot read: {(exc.strerror or str(exc)).lower()}"
        return None, [Problem(file, 1, "(file)", reason)], [path]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, [Problem(file, 1, "(file)", f"not UTF-8 text ({exc.reason})")], [path]
    tree, problems = yamlio.load(text, file)
    dependencies: list[Path | str] = [path, *(path.parent / n for n in named_files(tree))]
    if tree is None:
        return None, problems, dependencies

    def read_named(name: str, limit: int, unreadable: type[Exception]) -> tuple[Path, bytes]:
        """A file the domain file names, bounded; ``unreadable`` with the reason."""
        named = path.parent / name
        try:
            return named, read_bounded(named, limit, limits)
        except ReadRefused as exc:
            raise unreadable(f"{named}: {exc.reason}") from None
        except OSError as exc:
            reason = (exc.strerror or str(exc)).lower()
            raise unreadable(f"cannot read {named}: {reason}") from None

    def read_list(name: str) -> tuple[str, str]:
        if is_query(name):  # a lookup's domains_query, bounded as a list; asked each poll
            dependencies.append(name)
            return read_query(name, limits.max_list_bytes)
        list_path, raw = read_named(name, limits.max_list_bytes, ListUnreadable)
        try:
            return str(list_path), raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ListUnreadable(f"{list_path}: not UTF-8 text ({exc.reason})") from None

    def read_asset(name: str) -> bytes:
        return read_named(name, MAX_LOGO_BYTES, AssetUnreadable)[1]

    provider, more = build_provider(
        tree, file, path.parent, read_list, limits.max_domains, pool, known, read_asset
    )
    problems += more
    if any(p.is_error for p in problems):
        return None, problems, dependencies
    assert provider is not None
    return provider, problems + lint(provider), dependencies


def named_files(tree: object) -> list[str]:
    """The files a domain file names, which are read with it and watched with it: its
    domains_from list, its logo and its lookup's map file (a change to one is a change
    of the provider)."""
    if not isinstance(tree, yamlio.MarkedMap):
        return []
    meta, lookup = tree.get("provider"), tree.get("lookup")
    named = [
        tree.get("domains_from"),
        meta.get("logo") if isinstance(meta, dict) else None,
        lookup.get("map") if isinstance(lookup, dict) else None,
    ]
    return [name for name in named if isinstance(name, str)]


def load_file(path: Path, limits: Limits | None = None) -> tuple[Provider | None, list[Problem]]:
    """Read, parse and validate one file; lint it when it is valid."""
    provider, problems, _ = parse_file(path, limits or Limits.for_folder(path.parent))
    return provider, problems


def _read(
    path: Path, previous: LoadedFile | None, pool: dict[Server, Server], limits: Limits
) -> tuple[LoadedFile, bool]:
    """The file as it is now, and whether it had to be read (it is new or changed)."""
    if previous is not None and signature(list(previous.dependencies)) == previous.signature:
        return previous, False
    # Stat, then read: a write that lands during the read differs from this
    # signature, and the next reload reads the file again.
    before = signature([path])
    # A long list that changed by a line is checked by that line: the domains of
    # the version before are known to be valid (their set costs less than a check).
    earlier = previous.current if previous is not None else None
    known: Collection[str] = set(earlier.domains) if earlier and len(earlier.domains) > 1000 else ()
    provider, problems, dependencies = parse_file(path, limits, pool, known)
    marks = before + signature(dependencies[1:])
    last_good = provider or (previous.last_good if previous else None)
    named = tuple(str(d) for d in dependencies)
    state = LoadedFile(named, marks, provider, last_good, tuple(problems))
    return state, True


# A first read of at least this many files is shared among processes (one a CPU).
PARALLEL_FILES = 2_000


def scan_folder(
    folder: Path,
    previous: Mapping[str, LoadedFile] | None = None,
    limits: Limits | None = None,
    *,
    processes: int = 1,
) -> Scan:
    """Read the new and changed files; a file whose signature is unchanged is not opened.

    With ``processes`` > 1 and nothing read before (a first start without a state
    folder, such as a new pod), a large folder is parsed by that many forked
    processes. Only for a process with no child handling of its own: gunicorn's
    master calls this before it installs its SIGCHLD handler.
    """
    previous = previous or {}
    limits = limits or Limits.for_folder(folder)
    paths = domain_files(folder)
    pool: dict[Server, Server] = {}
    if processes > 1 and not previous and len(paths) >= PARALLEL_FILES:
        read = _read_in_processes(paths, limits, processes, pool)
        return Scan(read, tuple(read), ())
    states: dict[str, LoadedFile] = {}
    changed = []
    for path in paths:
        state, fresh = _read(path, previous.get(path.name), pool, limits)
        states[path.name] = state
        if fresh:
            changed.append(path.name)
    removed = tuple(sorted(previous.keys() - states.keys()))
    return Scan(states, tuple(changed), removed)


def _read_chunk(paths: list[Path], limits: Limits) -> bytes:
    """The states of ``paths``, pickled with each distinct server once: 100,000
    files should hold each server once, and each process interned its own."""
    pool: dict[Server, Server] = {}
    states = [(path.name, _read(path, None, pool, limits)[0]) for path in paths]
    return dumps_shared(states, list(pool.values()))


def _read_in_processes(
    paths: list[Path], limits: Limits, processes: int, pool: dict[Server, Server]
) -> dict[str, LoadedFile]:
    """Every file read, a share each by this process and ``processes - 1`` forked
    ones, in name order."""
    share = len(paths) // processes + 1
    own, others = paths[:share], paths[share:]
    size = max(1, len(others) // (4 * (processes - 1)))
    chunks = [others[i : i + size] for i in range(0, len(others), size)]
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=processes - 1, mp_context=context) as executor:
        futures = [executor.submit(_read_chunk, chunk, limits) for chunk in chunks]
        states = {path.name: _read(path, None, pool, limits)[0] for path in own}
        for future in futures:
            chunk: list[tuple[str, LoadedFile]] = loads_shared(future.result(), pool)
            states.update(chunk)
    return {name: states[name] for name in sorted(states)}
