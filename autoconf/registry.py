"""The loader: the domain folder, read and resolved into the snapshot that serves.

One reload is: compare one mark of the folder (nothing to do when it has not
moved); read the new and changed files (:mod:`autoconf.folder`); decide which
file serves which domain (:mod:`autoconf.ownership`); check that the outcome is
not an accident (:meth:`Registry.guard`); build the snapshot and swap it in
whole (:mod:`autoconf.snapshot`); keep the outcome in the state folder
(:mod:`autoconf.state`), so that a restart continues from it.

Under gunicorn one registry, in the master, does this for every worker: the
workers are forked with its snapshot and replaced when it changes (see
:mod:`autoconf.watch`), so every worker, a worker started later and the
service after a restart answer the same.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from autoconf.errors import Problem
from autoconf.folder import LoadedFile, folder_mark, scan_folder
from autoconf.machine import available_cpus
from autoconf.model import Provider
from autoconf.ownership import EMPTY, GRACE_SECONDS, FolderResult, resolve
from autoconf.reading import Limits
from autoconf.snapshot import EMPTY_SNAPSHOT, Snapshot, build_snapshot
from autoconf.state import StateFolder

T = TypeVar("T")
log = logging.getLogger("autoconf")

# A reload that would remove more than this share of the domains served (and
# more than MIN_DROP of them) is held back: a failed mount, a half-written sync.
MAX_DROP = 0.5
MIN_DROP = 10


_PAUSES = threading.Lock()
_paused = [0, False]  # reloads under way in this process; whether the collector was on


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while a reload builds its objects: loading
    makes none (measured: 0 found after 100,000 files), and the collector's passes
    over what is built so far cost more as it grows (at 100,000 files: the
    snapshot in 1.4 s instead of 3.4 s, the parallel first read in 11.4 s
    instead of 13.5 s). Reference counting still frees everything dropped.
    Reloads of several registries at once (tests, tools) share one pause: the
    first pauses, the last one out sets the collector back as it found it."""
    with _PAUSES:
        if _paused[0] == 0:
            _paused[1] = gc.isenabled()
            gc.disable()
        _paused[0] += 1
    try:
        yield
    finally:
        with _PAUSES:
            _paused[0] -= 1
            if _paused[0] == 0 and _paused[1]:
                gc.enable()


def load_folder(
    folder: Path,
    previous: FolderResult = EMPTY,
    *,
    limits: Limits | None = None,
    now: float | None = None,
    grace: float = GRACE_SECONDS,
) -> FolderResult:
    """Read and resolve a folder once (``check``, ``render``, tools): as the service
    would at a start after ``previous`` (a first start by default)."""
    scan = scan_folder(folder, previous.states, limits or Limits.for_folder(folder))
    return resolve(scan, previous, now=time.time() if now is None else now, grace=grace)


@dataclass(frozen=True, slots=True)
class Changes:
    """What a reload changed, by domain (patterns such as ``*.example.com`` included)."""

    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    read: tuple[str, ...] = ()  # files read anew
    problems: tuple[Problem, ...] = ()  # of the files read anew
    held_back: str = ""  # why the reload was not applied ("" when it was)

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed or self.read or self.held_back)


class Registry(Generic[T]):
    """The current snapshot of a folder, and the reload that replaces it whole.

    Readers take ``registry.snapshot`` once per request and use it throughout,
    so a reload running beside them never changes what they see; a reload holds
    no lock a request waits for. Unchanged files are neither read nor compiled
    again.
    """

    def __init__(
        self,
        folder: Path,
        compile: Callable[[Provider], T],
        *,
        limits: Limits | None = None,
        state: StateFolder | None = None,
        grace: float = GRACE_SECONDS,
        max_drop: float = MAX_DROP,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.folder = folder
        self._compile = compile
        self._limits = limits or Limits.for_folder(folder)
        self.state = state or StateFolder(None)
        self._grace = grace
        self._max_drop = max_drop
        self._clock = clock
        self._states: dict[str, LoadedFile] = {}
        self._applied: FolderResult = EMPTY  # the outcome that serves
        self._mark = -1  # folder_mark() as of the last reload
        self._dependencies: tuple[str, ...] = ()  # the domains_from files named
        self._compiled: dict[int, tuple[Provider, T]] = {}
        self._lock = threading.Lock()  # one reload at a time
        self.snapshot: Snapshot[T] = EMPTY_SNAPSHOT  # type: ignore[assignment]
        self.last_result: FolderResult | None = None
        self.held_back = ""  # why the newest outcome does not serve ("" when it does)
        self._deadline_seen = 0.0  # grace ends up to here were reloaded for already
        self._unsaved: tuple[FolderResult, FolderResult] | None = None

    def _compiled_for(self, provider: Provider) -> T:
        cached = self._compiled.get(id(provider))
        if cached is not None and cached[0] is provider:
            return cached[1]
        compiled = self._compile(provider)
        self._compiled[id(provider)] = (provider, compiled)
        return compiled

    def watched_folders(self) -> set[Path]:
        """The folder, and the folders of the domains_from files its files name."""
        return {self.folder, *(Path(path).parent for path in self._dependencies)}

    def next_deadline(self) -> float | None:
        """When a held file's grace ends (a reload is due then, with or without a change)."""
        pending = [h.until for h in self._applied.held if h.until > self._deadline_seen]
        return min(pending) if pending else None

    def reload(self, *, force: bool = False, persist: bool = True) -> Changes:
        """Bring the snapshot up to date with the folder. ``force`` applies what is
        found even when the guard would hold it back (SIGHUP with the override).
        Without ``persist`` the outcome waits for :meth:`persist` to be written."""
        changes = self._reload(force=force)
        if persist:
            self.persist()
        return changes

    def _reload(self, *, force: bool) -> Changes:
        with self._lock, _collector_paused():
            now = self._clock()
            first = self.last_result is None
            if first:
                stored = self.state.load(self._limits)
                if stored is not None:
                    self._applied, self._states = stored.as_previous(), stored.states
            deadline = self.next_deadline()
            due = deadline is not None and deadline <= now
            if due:
                self._deadline_seen = now
            # Marked before the scan: a change made while it runs shows next time.
            mark = folder_mark(self.folder, self._dependencies)
            if mark == self._mark and not (first or force or due):
                return Changes()  # the common case: a poll that found nothing new
            # A first read with nothing kept is shared among the CPUs (a new pod, a
            # first start): only in the first reload, before gunicorn's SIGCHLD handler.
            processes = available_cpus() if first and not self._states else 1
            scan = scan_folder(self.folder, self._states, self._limits, processes=processes)
            self._mark = mark
            self._states = dict(scan.states)
            self._dependencies = tuple(
                sorted({d for state in scan.states.values() for d in state.dependencies[1:]})
            )
            quiet = not scan.changed and not scan.removed and not self.held_back
            if quiet and not (first or force or due):
                return Changes()  # the mark moved, no file did (a domains_from file is new to it)
            result = resolve(scan, self._applied, now=now, grace=self._grace)
            return self._apply(result, force=force, first=first)

    def _apply(self, result: FolderResult, *, force: bool, first: bool) -> Changes:
        before: Snapshot[Any] = self.snapshot
        restarted = first and self._applied is not EMPTY
        if restarted:  # what served before the restart: its index, uncompiled, to compare
            before = build_snapshot(self._applied, lambda provider: None)
        snapshot = build_snapshot(result, self._compiled_for)
        added, changed, removed = _differences(self._applied, result, before, snapshot)
        # What is new to the log: the problems of the files read anew, and claims
        # that did not wait before.
        problems = tuple(p for name in result.changed for p in result.states[name].problems)
        waited = set(self._applied.claims)
        problems += tuple(p for p in result.claims if p not in waited)
        count = before.domain_count
        after = count + len(added) - len(removed)
        reason = "" if force else self.guard(count, after, len(removed))
        if reason:
            if restarted:  # serve what served before the restart, not nothing
                self.snapshot = build_snapshot(self._applied, self._compiled_for)
                self.last_result = self._applied
            self.held_back = reason
            return Changes(read=result.changed, problems=problems, held_back=reason)
        live = {id(p) for p in result.providers}
        self._compiled = {k: v for k, v in self._compiled.items() if k in live}
        previous = self._applied
        self.snapshot = snapshot  # the swap: one reference, taken whole by readers
        self.last_result = self._applied = result
        self.held_back = ""
        self._unsaved = (result, EMPTY if first and not restarted else previous)
        return Changes(
            added=tuple(sorted(added)),
            changed=tuple(sorted(changed)),
            removed=tuple(sorted(removed)),
            read=result.changed,
            problems=problems,
        )

    def persist(self) -> None:
        """Write the outcome of the last applied reload to the state folder (after the
        swap, so that the new snapshot does not wait for the disk)."""
        with self._lock:
            unsaved, self._unsaved = self._unsaved, None
            if unsaved is not None:
                self.state.save(*unsaved, self._limits)

    def guard(self, before: int, after: int, removed: int) -> str:
        """Why an outcome looks like an accident rather than an edit ("" if it does not)."""
        if before and not after:
            return (
                f"the folder would serve no domain (it served {before}); keeping the last snapshot"
            )
        if removed > MIN_DROP and removed > self._max_drop * before:
            return (
                f"the reload would remove {removed} of {before} domains at once (more than "
                f"{self._max_drop:.0%}); keeping the last snapshot"
            )
        return ""


def _differences(
    before: FolderResult, after: FolderResult, old: Snapshot[Any], new: Snapshot[Any]
) -> tuple[set[str], set[str], set[str]]:
    """The domains (and patterns) a reload adds, changes and removes, from the files
    whose served version changed only."""
    added: set[str] = set()
    changed: set[str] = set()
    removed: set[str] = set()
    for file in before.serving.keys() | after.serving.keys():
        was, now = before.serving.get(file), after.serving.get(file)
        if was is now:
            continue
        if (
            was is not None
            and now is not None
            and was.same_settings(now)
            and len(now.domains) > BIG
        ):
            # A long list that gained or lost a few lines, answered alike otherwise:
            # the few that differ, and whether the service had them.
            for domain in _few_differing(was.domains, now.domains):
                served_before, served_now = old.serves(domain), new.serves(domain)
                if served_now and not served_before:
                    added.add(domain)
                elif served_before and not served_now:
                    removed.add(domain)
            continue
        old_domains = set(was.domains) if was is not None else set()
        new_domains = set(now.domains) if now is not None else set()
        added |= new_domains - old_domains
        removed |= old_domains - new_domains
        if was is not None and now is not None and not was.same_settings(now):
            changed |= old_domains & new_domains
    moved = added & removed  # from one file to another: served all along
    return added - moved, changed | moved, removed - moved


BIG = 10_000  # domains in one file: a reload's differences are found in bulk


def _few_differing(was: tuple[str, ...], now: tuple[str, ...]) -> set[str]:
    """The domains in one of two long lists of distinct domains but not the other:
    with one set of the old list, what is new; the new list's set (as long again
    to build) only when something also went (measured at a million: 0.17 s
    instead of 0.44 s for an added line)."""
    old = set(was)
    new = {domain for domain in now if domain not in old}
    if len(now) - len(new) != len(old):  # some of the old domains are gone
        new |= old.difference(now)
    return new
