"""Live reload: each serving process polls its domain folder and swaps in new snapshots.

Polling needs no extra dependency and works on every file system, in
containers and on Kubernetes ConfigMaps (which change files by renaming a
symlink). A scan only stats files; it reads and compiles just the changed ones.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from autoconf.registry import Changes, Registry

log = logging.getLogger("autoconf")

POLL_SECONDS = 1.0
# A scan that takes long (100,000 files) is not repeated back to back: the
# pause is at least this many times the scan's own duration.
POLL_BACKOFF = 10


def _listed(names: tuple[str, ...], limit: int = 10) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def report(changes: Changes) -> None:
    """The log lines of a reload: what changed, and every problem of the files read anew."""
    for problem in changes.problems:
        (log.error if problem.is_error else log.warning)("%s", problem)
    for what, names in (
        ("added", changes.added),
        ("changed", changes.changed),
        ("removed", changes.removed),
    ):
        if names:
            log.info("reload: domains %s: %s", what, _listed(names))


class Watcher:
    """Polls the registry's folder from a daemon thread, one thread per process.

    ``ensure_running`` is cheap and idempotent; called after a fork (gunicorn's
    post_fork) or on a request, it starts the thread in a process that has none.
    """

    def __init__(self, registry: Registry[Any], interval: float = POLL_SECONDS) -> None:
        self.registry = registry
        self.interval = interval
        self._pid: int | None = None
        self._lock = threading.Lock()

    def ensure_running(self) -> None:
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            thread = threading.Thread(target=self._run, name="autoconf-reload", daemon=True)
            thread.start()

    def reload_now(self) -> Changes:
        changes = self.registry.reload()
        if changes:
            report(changes)
        return changes

    def _run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                self.reload_now()
            except Exception:  # a reload must never end the watching
                log.exception(
                    "reload of %s failed; serving the previous snapshot", self.registry.folder
                )
            elapsed = time.monotonic() - started
            time.sleep(max(self.interval, POLL_BACKOFF * elapsed))
