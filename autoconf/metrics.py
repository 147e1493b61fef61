"""The service's metrics: requests by endpoint and status, reloads, domains live,
broken files, contested domains, and whether ``/healthz`` says degraded
(``GET /metrics``, docs/http.md; the alert rules of deploy/prometheus/alerts.yml).

Under gunicorn every worker is a process with numbers of its own. prometheus_client's
multiprocess mode keeps each process's numbers in a file in PROMETHEUS_MULTIPROC_DIR
and adds them up when asked, so any worker that answers a scrape tells the same totals.
That mode is chosen when prometheus_client is first imported, so it is imported
here only once :func:`prepare_folder` has run (``mail-autoconf serve`` and
deploy/gunicorn.conf.py run it first). Without the variable, as under a test
client, the numbers are those of the one process.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any, TypeVar

from autoconf.model import Provider
from autoconf.registry import Changes, Registry
from autoconf.snapshot import Snapshot

T = TypeVar("T")

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
RELOAD_OUTCOMES = ("changed", "unchanged", "held", "failed")
# Requests that matched no route are counted under this name, never under their
# path: paths are the asker's to choose, and every new label value is a new series.
UNKNOWN_ENDPOINT = "unknown"
OK, DEGRADED = "ok", "degraded"


def health_status(snapshot: Snapshot[Any], held_back: str, lookups_failing: bool = False) -> str:
    """The status ``/healthz`` tells and ``autoconf_degraded`` counts: ``degraded``
    when a file is broken, a domain contested, a missing file held for its grace, a
    reload held back (``held_back``: the registry's reason), nothing is served, or
    (in /healthz) a per-user lookup of this process failed last time it asked."""
    problems = snapshot.broken or snapshot.contests or snapshot.held or held_back
    return DEGRADED if problems or lookups_failing or not snapshot.entries else OK


def prepare_folder(environ: MutableMapping[str, str]) -> Path | None:
    """Give prometheus_client's multiprocess mode its folder, before it is imported.

    A folder named by PROMETHEUS_MULTIPROC_DIR is used (created if missing) and
    emptied of an earlier run's ``*.db`` files, which would otherwise add up with
    this run's. Without one, a private temporary folder is made and returned, for
    the caller to remove at exit.
    """
    given = environ.get(MULTIPROC_DIR, "").strip()
    if given:
        folder = Path(given)
        folder.mkdir(parents=True, exist_ok=True)
        environ[MULTIPROC_DIR] = str(folder)
        for stale in folder.glob("*.db"):
            stale.unlink(missing_ok=True)
        return None
    private = Path(tempfile.mkdtemp(prefix="mail-autoconf-metrics-"))
    environ[MULTIPROC_DIR] = str(private)
    return private


def mark_process_dead(pid: int) -> None:
    """A worker has gone: its gauges stop counting; its counters keep counting."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


class Metrics:
    """The service's metrics, in a registry of their own (one per app, so that tests
    that build many apps in one process do not add up each other's numbers)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge

        self.registry = CollectorRegistry()
        self.requests = Counter(
            "autoconf_requests",
            "HTTP requests answered, by endpoint (unknown: no such path) and status",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.reloads = Counter(
            "autoconf_reloads",
            "Reads of the domain folder, by outcome: changed, unchanged, held (it looked "
            "like an accident, such as an empty folder: the last snapshot keeps serving), "
            "or failed (the folder could not be read; the last snapshot keeps serving)",
            ["outcome"],
            registry=self.registry,
        )
        # Each worker sets these on each of its reloads (every AUTOCONF_RELOAD_SECONDS),
        # so the most recent value of a live process is the folder as it is now;
        # "max" would keep a removed domain counted while an older process lives.
        self.domains = Gauge(
            "autoconf_domains_live",
            "Domains served (a wildcard pattern and the catch-all count one each)",
            registry=self.registry,
            multiprocess_mode="livemostrecent",
        )
        self.broken = Gauge(
            "autoconf_broken_files",
            "Domain files skipped for errors (a last good version may still serve)",
            registry=self.registry,
            multiprocess_mode="livemostrecent",
        )
        self.contested = Gauge(
            "autoconf_contested_domains",
            "Domains that more than one file claims (served by the file that had them "
            "first, or by none)",
            registry=self.registry,
            multiprocess_mode="livemostrecent",
        )
        # Set with the others on each reload, which is when what /healthz decides on
        # changes: /healthz and this gauge read the same health_status.
        self.degraded = Gauge(
            "autoconf_degraded",
            "1 when /healthz says degraded (a broken file, a contested domain, a missing "
            "file held for its grace, a reload held back, or nothing served), else 0",
            registry=self.registry,
            multiprocess_mode="livemostrecent",
        )
        self.lookups = Counter(
            "autoconf_lookups",
            "Per-user lookups by source (map, postgresql, ldap) and outcome: found, "
            "not_found, cached (answered from the cache), failed (down, slow or garbage: "
            "the provider's default was answered)",
            ["source", "outcome"],
            registry=self.registry,
        )
        self._children: dict[tuple[str | None, int], Any] = {}
        self._lookup_children: dict[tuple[str, str], Any] = {}
        for outcome in RELOAD_OUTCOMES:  # shown from the start, at 0
            self.reloads.labels(outcome)

    def reloaded(self, snapshot: Snapshot[Any], changes: Changes, held_back: str) -> None:
        """After a reload: ``snapshot`` serves, ``held_back`` is why a newer outcome
        does not ("" when none is held back)."""
        outcome = "held" if changes.held_back else "changed" if changes else "unchanged"
        self.reloads.labels(outcome).inc()
        self.domains.set(snapshot.domain_count)
        self.broken.set(len(snapshot.broken))
        self.contested.set(len(snapshot.contests))
        self.degraded.set(1 if health_status(snapshot, held_back) == DEGRADED else 0)

    def count(self, endpoint: str | None, status: int) -> None:
        # The labelled child is looked up once per (endpoint, status): labels()
        # costs more than the count itself. Both are bounded sets.
        key = (endpoint, status)
        child = self._children.get(key)
        if child is None:
            name = endpoint.rpartition(".")[2] if endpoint else UNKNOWN_ENDPOINT
            child = self._children[key] = self.requests.labels(name, str(status))
        child.inc()

    def count_lookup(self, source: str, outcome: str) -> None:
        key = (source, outcome)  # a child each, looked up once (as count's)
        child = self._lookup_children.get(key)
        if child is None:
            child = self._lookup_children[key] = self.lookups.labels(source, outcome)
        child.inc()

    def exposition(self) -> tuple[str, bytes]:
        """The content type and the text format: of every process (multiprocess
        mode), or of this one."""
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
        from prometheus_client.multiprocess import MultiProcessCollector

        if os.environ.get(MULTIPROC_DIR):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return CONTENT_TYPE_LATEST, generate_latest(registry)
        return CONTENT_TYPE_LATEST, generate_latest(self.registry)


class MeteredRegistry(Registry[T]):
    """A Registry whose every reload is counted and sets the gauges."""

    def __init__(
        self, folder: Path, compile: Callable[[Provider], T], metrics: Metrics, **options: Any
    ) -> None:
        super().__init__(folder, compile, **options)
        self.metrics = metrics

    def reload(self, *, force: bool = False, persist: bool = True) -> Changes:
        try:
            changes = super().reload(force=force, persist=persist)
        except Exception:
            self.metrics.reloads.labels("failed").inc()
            raise
        self.metrics.reloaded(self.snapshot, changes, self.held_back)
        return changes
