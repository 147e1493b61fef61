"""The application factory: ``create_app(settings)`` -> the WSGI app.

Nothing happens at import time. ``create_app`` loads the domain folder once
and assembles the one request pipeline (:mod:`autoconf.pipeline`) over every
endpoint (:mod:`autoconf.endpoints`). Under gunicorn it runs in the master
(``--preload``), whose watcher then reloads for every worker.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from functools import partial
from typing import Any

from werkzeug.datastructures import Headers
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.test import Client, run_wsgi_app

from autoconf import render
from autoconf.endpoints import router
from autoconf.lookup.runtime import Lookups
from autoconf.metrics import MeteredRegistry, Metrics
from autoconf.pipeline import Environ, Pipeline, Service, StartResponse, WSGIApp
from autoconf.registry import Changes
from autoconf.resolver import lookup
from autoconf.settings import Settings
from autoconf.signing import load_signer
from autoconf.state import StateFolder
from autoconf.tls_ask import TlsPermission
from autoconf.watch import Watcher, log_problems

log = logging.getLogger("autoconf")


class Application:
    """The WSGI app, and what the hooks around it reach for (the watcher, the metrics)."""

    def __init__(self, service: Service, watcher: Watcher, metrics: Metrics) -> None:
        self.service = service
        self.watcher = watcher
        self.metrics = metrics
        pipeline: WSGIApp = Pipeline(service, router(metrics), metrics.count)
        hops = service.settings.proxy_hops
        if hops:
            pipeline = ProxyFix(pipeline, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)
        self.pipeline = pipeline  # the service's answers, without the watching

    def close(self) -> None:
        """Stop watching the folder (tests, tools that make many apps in one process)."""
        self.watcher.stop()
        self.service.lookups.close()

    def test_client(self) -> Client:
        """Werkzeug's test client of this app, asking from loopback (tests)."""
        return _LoopbackClient(self, use_cookies=False)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        # A process serving without a loading master (a test client, plain gunicorn
        # without our settings) watches the folder itself, from its first request.
        self.watcher.ensure_running()
        return self.pipeline(environ, start_response)


class _LoopbackClient(Client):
    """Without cookies (the service sets none): Werkzeug's cookie handling rebuilds
    the request's URL after the answer, and fails on a Host no server would take
    (``XN--``), which the service itself answers 400."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("environ_base", {"REMOTE_ADDR": "127.0.0.1"})
        return super().open(*args, **kwargs)

    def run_wsgi_app(
        self, environ: Environ, buffered: bool = False
    ) -> tuple[Iterable[bytes], str, Headers]:
        return run_wsgi_app(self.application, environ, buffered=buffered)


def create_app(
    settings: Settings | None = None, *, state: StateFolder | None = None
) -> Application:
    """The app for ``settings`` (by default, the environment's). ``state``: another
    view of the state folder than the settings' (the CLI's, which only reads it)."""
    settings = settings or Settings.from_env()
    settings.check()
    signer = load_signer(settings)  # before any work: a broken signing set-up stops us
    metrics = Metrics()
    registry = MeteredRegistry(
        settings.domains,
        render.Compiler(),
        metrics,
        limits=settings.limits(),
        state=state or StateFolder(settings.state_folder),
        grace=settings.grace_seconds,
        max_drop=settings.max_drop,
    )
    # The state is written later, by the watcher (in gunicorn's master, after the
    # workers have forked): a start does not wait for the disk.
    _report_start(settings, registry.reload(persist=False), registry)
    if signer is not None:
        log.info("signing Apple profiles as %s", signer.subject)
    watcher = Watcher(registry, settings.reload_seconds)
    tls = TlsPermission(partial(lookup, nameserver=settings.resolver))
    lookups = Lookups(metrics.count_lookup)
    return Application(Service(settings, registry, signer, tls, lookups), watcher, metrics)


def _report_start(settings: Settings, changes: Changes, registry: MeteredRegistry[Any]) -> None:
    log_problems(changes.problems)
    if changes.held_back:
        log.error("start: %s", changes.held_back)
    snapshot = registry.snapshot
    for broken in snapshot.broken:
        state = "its last good version serves" if broken.serving_last_good else "not served"
        log.error("%s: broken, %s", broken.file, state)
    log.info(
        "serving %d domains of %d providers from %s (%d broken files, %d contested domains)",
        snapshot.domain_count,
        len(snapshot.entries),
        settings.domains,
        len(snapshot.broken),
        len(snapshot.contests),
    )
