"""``GET /metrics`` (SPEC §3): requests by endpoint and status, reloads, domains live.

Under gunicorn every worker is a process with numbers of its own. prometheus_client's
multiprocess mode keeps each process's numbers in a file in PROMETHEUS_MULTIPROC_DIR
and adds them up when asked, so any worker that answers a scrape tells the same totals.
That mode is chosen when prometheus_client is first imported: `mail-autoconf serve`
and deploy/gunicorn.conf.py set the folder up before that (see
:mod:`autoconf.gunicorn_conf`). Without the variable, as under a test client, the
numbers are those of the one process.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from flask import Blueprint, Flask, Response, abort, current_app, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

from autoconf.model import Provider
from autoconf.registry import Changes, Registry
from autoconf.snapshot import Snapshot

T = TypeVar("T")

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
RELOAD_OUTCOMES = ("changed", "unchanged", "held", "failed")
# Requests that matched no route are counted under this name, never under their
# path: paths are the asker's to choose, and every new label value is a new series.
UNKNOWN_ENDPOINT = "unknown"

blueprint = Blueprint("metrics", __name__)


class Metrics:
    """The service's metrics, in a registry of their own (one per app, so that tests
    that build many apps in one process do not add up each other's numbers)."""

    def __init__(self) -> None:
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
        self._children: dict[tuple[str | None, int], Any] = {}
        for outcome in RELOAD_OUTCOMES:  # shown from the start, at 0
            self.reloads.labels(outcome)

    def reloaded(self, snapshot: Snapshot[Any], changes: Changes) -> None:
        outcome = "held" if changes.held_back else "changed" if changes else "unchanged"
        self.reloads.labels(outcome).inc()
        self.domains.set(snapshot.domain_count)
        self.broken.set(len(snapshot.broken))

    def count(self, endpoint: str | None, status: int) -> None:
        # The labelled child is looked up once per (endpoint, status): labels()
        # costs more than the count itself. Both are bounded sets.
        key = (endpoint, status)
        child = self._children.get(key)
        if child is None:
            name = endpoint.rpartition(".")[2] if endpoint else UNKNOWN_ENDPOINT
            child = self._children[key] = self.requests.labels(name, str(status))
        child.inc()

    def exposition(self) -> bytes:
        """The text format: of every process (multiprocess mode), or of this one."""
        if os.environ.get(MULTIPROC_DIR):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)


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
        self.metrics.reloaded(self.snapshot, changes)
        return changes


def init_app(app: Flask, metrics: Metrics) -> None:
    app.extensions["autoconf.metrics"] = metrics
    app.register_blueprint(blueprint)


def _metrics() -> Metrics:
    found: Metrics = current_app.extensions["autoconf.metrics"]
    return found


@blueprint.after_app_request
def _count(response: Response) -> Response:
    _metrics().count(request.endpoint, response.status_code)
    return response


@blueprint.get("/metrics", endpoint="metrics")
def metrics_view() -> Response:
    # For the operator's Prometheus, which scrapes the service itself. A request
    # that came through a reverse proxy (nginx, an Ingress) carries
    # X-Forwarded-For, whatever the client sent: such a request is from the
    # internet, and gets what a path that does not exist gets.
    if "X-Forwarded-For" in request.headers:
        abort(404)
    return Response(_metrics().exposition(), content_type=CONTENT_TYPE_LATEST)
