"""The application factory: ``gunicorn 'autoconf.app:create_app()'``.

Nothing happens at import time; ``create_app`` reads the settings, loads the
domain folder once, and wires one error handler for every failure.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from autoconf import metrics, render
from autoconf.errors import MethodNotAllowed, NotFound, RequestError
from autoconf.render import page
from autoconf.settings import Settings
from autoconf.signing import load_signer
from autoconf.state import StateFolder
from autoconf.watch import Watcher
from autoconf.web import blueprint, html, page_language
from autoconf.wsgi import (
    ANSWER_HEADERS,
    Environ,
    Service,
    StartResponse,
    WSGIApp,
    machine_endpoints,
    text_error,
)

log = logging.getLogger("autoconf")


def _with_answer_headers(wsgi_app: WSGIApp) -> WSGIApp:
    """Flask's answers with :data:`ANSWER_HEADERS` added, unless a view set its own."""

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            present = {name.lower() for name, _ in headers}
            headers.extend(h for h in ANSWER_HEADERS if h[0].lower() not in present)
            return start_response(status, headers, exc_info)

        return wsgi_app(environ, start)

    return app


def _watched(wsgi_app: WSGIApp, watcher: Watcher) -> WSGIApp:
    """Each serving process watches the folder from its own thread, started on its
    first request (gunicorn forks the workers after create_app has run)."""

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        watcher.ensure_running()
        return wsgi_app(environ, start_response)

    return app


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    settings.check()
    signer = load_signer(settings)  # before any work: a broken signing set-up stops us
    app = Flask(__name__)

    meter = metrics.Metrics()
    registry = metrics.MeteredRegistry(
        settings.domains,
        render.Compiler(),
        meter,
        limits=settings.limits(),
        state=StateFolder(settings.state_folder),
        grace=settings.grace_seconds,
        max_drop=settings.max_drop,
    )
    # The state is written later, by the watcher (in gunicorn's master, after the
    # workers have forked): a start does not wait for the disk.
    changes = registry.reload(persist=False)
    for problem in changes.problems:
        (log.error if problem.is_error else log.warning)("%s", problem)
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
    if signer is not None:
        log.info("signing Apple profiles as %s", signer.subject)
    watcher = app.extensions["autoconf.watcher"] = Watcher(registry, settings.reload_seconds)
    service = app.extensions["autoconf"] = Service(settings, registry, signer)
    app.register_blueprint(blueprint)
    metrics.init_app(app, meter)  # GET /metrics, and every answer counted
    app.register_error_handler(RequestError, _request_error)
    app.register_error_handler(HTTPException, _http_error)

    # The client endpoints first, in plain WSGI; every other path on to Flask.
    wsgi = machine_endpoints(service, meter.count, _with_answer_headers(app.wsgi_app))
    if settings.proxy_hops:
        hops = settings.proxy_hops
        wsgi = ProxyFix(wsgi, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)
    app.wsgi_app = _watched(wsgi, watcher)  # type: ignore[method-assign,assignment]
    return app


def _http_error(exc: HTTPException) -> Response:
    """Flask's own refusals (no such path, wrong method) as RequestErrors."""
    error = {404: NotFound, 405: MethodNotAllowed}.get(exc.code or 400, RequestError)
    reason = exc.description or exc.name
    response = _request_error(error(reason.split(". ")[0].rstrip(".")))
    allow = dict(exc.get_headers()).get("Allow")
    if allow:  # RFC 9110: a 405 names the methods that are allowed
        response.headers["Allow"] = allow
    return response


def _request_error(exc: RequestError) -> Response:
    """The one place where a Flask view's error becomes an answer (the client
    endpoints answer theirs in :mod:`autoconf.wsgi`, each in its own format)."""
    if request.endpoint == "autoconf.page":  # the form again, with the reason
        value = request.args.get("emailaddress", "")[:320]
        return html(page.form(page_language(), error=exc.reason, value=value), exc.status)
    answer = text_error(exc)
    return Response(answer.body, answer.status, content_type=answer.content_type)
