"""Live reload: one loader watches the domain folder and swaps in new snapshots.

Under gunicorn (``mail-autoconf serve``, or ``gunicorn -c deploy/gunicorn.conf.py``)
the loader is a thread of the master: the workers are forked with its snapshot
and never load anything themselves. When a reload changes the snapshot, the
master replaces its workers as on SIGHUP (new ones forked with the new
snapshot, the old ones finishing the requests they have), so that all workers,
a worker started after a ``kill -9`` and a restarted service answer the same.
Anywhere else (a test client, gunicorn without this package's settings) each
process watches for itself, as :meth:`Watcher.ensure_running` starts it.

A reload first compares one mark of the folder (names, times, sizes); only when
that moved does it scan, reading and compiling just the changed files. It runs
when inotify reports a change in the folder (or in the folder of a domains_from
file), and every ``interval`` seconds as a poll: polling works on every file
system, in containers and on Kubernetes ConfigMaps (which change files by
renaming a symlink). With inotify at hand the poll is only a safety net, and
backs off further when it is costly (100,000 files); see :mod:`autoconf.events`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from autoconf.errors import Problem
from autoconf.events import FolderEvents, open_events
from autoconf.registry import Changes, Registry

log = logging.getLogger("autoconf")

POLL_SECONDS = 1.0
# A reload that takes long (100,000 files) is not repeated back to back: the
# pause is at least this many times its own duration (so at most a tenth of a
# core goes to reloading, however often files change).
POLL_BACKOFF = 10
# With inotify reporting changes, the poll that finds nothing new is only a
# safety net: at least this many times its own duration apart.
SAFETY_BACKOFF = 60
# After an event, a little time for the rest of a burst of writes to land.
SETTLE_SECONDS = 0.2
# How soon a stopped watcher's thread ends while it waits for inotify events.
STOP_CHECK_SECONDS = 1.0


def _listed(names: tuple[str, ...], limit: int = 10) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def log_problems(problems: Iterable[Problem]) -> None:
    """Each problem as a log line: errors as errors, warnings as warnings."""
    for problem in problems:
        (log.error if problem.is_error else log.warning)("%s", problem)


def report(changes: Changes) -> None:
    """The log lines of a reload: what changed, and every problem of the files read anew."""
    log_problems(changes.problems)
    if changes.held_back:
        log.error(
            "reload held back: %s (fix the folder, or `touch STATE/force-reload` and send SIGHUP)",
            changes.held_back,
        )
    for what, names in (
        ("added", changes.added),
        ("changed", changes.changed),
        ("removed", changes.removed),
    ):
        if names:
            log.info("reload: domains %s: %s", what, _listed(names))


class Watcher:
    """Watches the registry's folder from a daemon thread, one thread per process.

    ``ensure_running`` is cheap and idempotent. Called on every request, it
    starts the thread in a process that has none: gunicorn forks its workers
    after ``create_app`` has run (and again after a SIGHUP), and threads do not
    survive a fork. With ``interval`` 0 there is no polling, only that reload.
    """

    def __init__(self, registry: Registry[Any], interval: float = POLL_SECONDS) -> None:
        self.registry = registry
        self.interval = interval
        self._pid: int | None = None
        self._lock = threading.Lock()
        self._on_change: Callable[[], None] | None = None
        self.master: int | None = None  # the pid of the loading master, under gunicorn
        self._rotation_pending = False
        self._stopping = threading.Event()

    def stop(self) -> None:
        """End the watching: the thread closes its inotify descriptor and ends at
        its next wake-up (within a poll interval)."""
        self._stopping.set()

    def serve_from_master(self, on_change: Callable[[], None]) -> None:
        """Load in this process (gunicorn's master) for every worker: watch from a
        thread of its own, and call ``on_change`` after each reload that changed
        the snapshot (the master then replaces its workers)."""
        self.master = os.getpid()
        self._on_change = on_change
        self._pid = os.getpid()
        log.info("the master loads %s for every worker", self.registry.folder)
        if self.interval > 0:  # the thread writes the start's outcome first
            threading.Thread(target=self._run, name="autoconf-reload", daemon=True).start()
        else:
            self.registry.persist()

    def hang_up(self) -> None:
        """SIGHUP in the master, before gunicorn forks the new workers: a SIGHUP
        this watcher sent has nothing left to do; the operator's reloads now (with
        the guard overridden when ``STATE/force-reload`` exists)."""
        force = self.registry.state.force_requested()
        pending, self._rotation_pending = self._rotation_pending, False
        if pending and not force:
            return
        # The workers gunicorn forks next get the outcome: no second SIGHUP for it.
        self._reload_logged(force=force, notify=False)

    def ensure_running(self) -> None:
        if self._pid == os.getpid() or self.master is not None:
            return  # watching already, or a worker of a master that loads
        with self._lock:
            if self._pid == os.getpid():
                return
            # A process new to this registry brings itself up to date before
            # its first answer; after a SIGHUP that is the new configuration.
            self._reload_logged()  # and writes the start's outcome with its own
            if self.interval > 0:
                threading.Thread(target=self._run, name="autoconf-reload", daemon=True).start()
            self._pid = os.getpid()

    def reload_now(self, *, force: bool = False, notify: bool = True) -> Changes:
        before = self.registry.snapshot, self.registry.held_back
        changes = self.registry.reload(force=force, persist=False)
        if changes:
            report(changes)
        changed = self.registry.snapshot is not before[0] or self.registry.held_back != before[1]
        if notify and changed and self._on_change is not None:
            self._rotation_pending = True
            self._on_change()
        self.registry.persist()
        return changes

    def _reload_logged(self, *, force: bool = False, notify: bool = True) -> float:
        """Reload, logging instead of raising; how long it took."""
        started = time.monotonic()
        try:
            self.reload_now(force=force, notify=notify)
        except Exception as exc:  # a reload must never end the watching, nor fail a request
            log.error(
                "reload of %s failed (%s: %s); serving the last snapshot",
                self.registry.folder,
                type(exc).__name__,
                exc,
            )
        return time.monotonic() - started

    def _run(self) -> None:
        self.registry.persist()  # the start's outcome, now that the workers serve it
        events = open_events(self.registry.watched_folders())
        how = "on inotify events" if events is not None else "by polling"
        log.info("watching %s %s, polling every %g s", self.registry.folder, how, self.interval)
        elapsed = 0.0
        try:
            while not self._stopping.is_set():
                if events is None:
                    wait = self._until_due(max(self.interval, POLL_BACKOFF * elapsed))
                    if self._stopping.wait(wait):
                        break
                else:
                    gap = max(SETTLE_SECONDS, POLL_BACKOFF * elapsed)
                    if self._stopping.wait(gap):  # the least time between two reloads
                        break
                    idle = self._until_due(max(self.interval, SAFETY_BACKOFF * elapsed)) - gap
                    if self._changed_within(events, idle):
                        time.sleep(SETTLE_SECONDS)  # the rest of a burst of writes lands
                        events.drain()
                    if self._stopping.is_set():
                        break
                elapsed = self._reload_logged()
                if events is not None:  # a domains_from file may name another folder now
                    events.watch(self.registry.watched_folders())
        finally:
            if events is not None:
                events.close()

    def _changed_within(self, events: FolderEvents, seconds: float) -> bool:
        """Whether the folder changed within ``seconds`` (False at once on a stop,
        which is looked for every STOP_CHECK_SECONDS)."""
        deadline = time.monotonic() + seconds
        while not self._stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if events.wait(min(left, STOP_CHECK_SECONDS)):
                return True
        return False

    def _until_due(self, seconds: float) -> float:
        """``seconds``, or less when a held file's grace ends sooner."""
        deadline = self.registry.next_deadline()
        if deadline is None:
            return seconds
        return max(SETTLE_SECONDS, min(seconds, deadline - time.time() + 0.05))
