"""The application factory: ``gunicorn 'autoconf.app:create_app()'``.

Nothing happens at import time; ``create_app`` reads the settings, loads the
domain folder once, and wires one error handler for every failure.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from autoconf import metrics, render
from autoconf.errors import MethodNotAllowed, NotFound, PayloadTooLarge, RequestError
from autoconf.render import autodiscover, page
from autoconf.settings import Settings
from autoconf.signing import load_signer
from autoconf.watch import Watcher
from autoconf.web import JSON, XML, Service, blueprint, html, page_language

log = logging.getLogger("autoconf")

# Outlook writes these paths in any letter case; the rest of the path (an
# address in the v2 form) is left as it is.
CASE_INSENSITIVE_PREFIXES = ("/autodiscover/autodiscover.xml", "/autodiscover/autodiscover.json")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


# On every answer, errors included: no sniffing, nothing to run, no framing, no
# referrer, and no cache along the way (answers name the asker's address). A view
# may set its own (the page sets its own Content-Security-Policy).
ANSWER_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
)


def _outermost(wsgi_app: WSGIApp, watcher: Watcher) -> WSGIApp:
    """What every request needs before and after Flask, done on plain WSGI data.

    Cheaper than Flask hooks and Werkzeug's header objects, which matter when an
    answer costs tens of microseconds.
    """

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        # Each serving process watches the folder from its own thread, started on
        # its first request (gunicorn forks workers after create_app has run).
        watcher.ensure_running()
        path = environ.get("PATH_INFO", "")
        lowered = path[:32].lower()
        for prefix in CASE_INSENSITIVE_PREFIXES:
            if lowered.startswith(prefix) and not path.startswith(prefix):
                environ["PATH_INFO"] = prefix + path[len(prefix) :]
                break

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            present = {name.lower() for name, _ in headers}
            headers.extend(h for h in ANSWER_HEADERS if h[0].lower() not in present)
            return start_response(status, headers, exc_info)

        return wsgi_app(environ, start)

    return app


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    settings.check()
    signer = load_signer(settings)  # before any work: a broken signing set-up stops us
    app = Flask(__name__)
    # One byte more than we accept, so that the view itself sees an oversized
    # chunked body and refuses it (see web._body).
    app.config["MAX_CONTENT_LENGTH"] = autodiscover.MAX_BODY + 1

    meter = metrics.Metrics()
    registry = metrics.MeteredRegistry(settings.domains, render.Compiler(), meter)
    for problem in registry.reload().problems:
        if problem.is_error:
            log.error("%s", problem)
    snapshot = registry.snapshot
    for broken in snapshot.broken:
        log.error("%s: skipped, its domains are not served", broken.file)
    log.info(
        "serving %d domains of %d providers from %s (%d broken files)",
        snapshot.domain_count,
        len(snapshot.entries),
        settings.domains,
        len(snapshot.broken),
    )
    if signer is not None:
        log.info("signing Apple profiles as %s", signer.subject)
    watcher = Watcher(registry, settings.reload_seconds)
    app.extensions["autoconf"] = Service(settings, registry, signer)
    app.register_blueprint(blueprint)
    metrics.init_app(app, meter)  # GET /metrics, and every answer counted
    app.register_error_handler(RequestError, _request_error)
    app.register_error_handler(HTTPException, _http_error)

    wsgi: WSGIApp = app.wsgi_app
    if settings.proxy_hops:
        hops = settings.proxy_hops
        wsgi = ProxyFix(wsgi, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)
    app.wsgi_app = _outermost(wsgi, watcher)  # type: ignore[method-assign,assignment]
    return app


def _http_error(exc: HTTPException) -> Response:
    """Flask's own refusals (no such path, wrong method, body too large) as RequestErrors."""
    error = {404: NotFound, 405: MethodNotAllowed, 413: PayloadTooLarge}.get(
        exc.code or 400, RequestError
    )
    reason = exc.description or exc.name
    if exc.code == 413:
        reason = "the request body is larger than 64 KiB"
    response = _request_error(error(reason.split(". ")[0].rstrip(".")))
    allow = dict(exc.get_headers()).get("Allow")
    if allow:  # RFC 9110: a 405 names the methods that are allowed
        response.headers["Allow"] = allow
    return response


def _request_error(exc: RequestError) -> Response:
    """The one place where an error becomes an answer, in the endpoint's own format."""
    if request.endpoint == "autoconf.pox":
        # Exchange answers a malformed request with its error document and HTTP 200.
        status = 200 if exc.status == 400 else exc.status
        body = autodiscover.error_document(exc.pox_code, exc.reason)
        return Response(body, status, content_type=XML)
    if request.endpoint == "autoconf.json":
        body = autodiscover.json_error(exc.json_code, exc.reason)
        return Response(body, exc.status, content_type=JSON)
    if request.endpoint == "autoconf.page":  # the form again, with the reason
        value = request.args.get("emailaddress", "")[:320]
        return html(page.form(page_language(), error=exc.reason, value=value), exc.status)
    return Response(f"{exc.reason}\n", exc.status, content_type="text/plain; charset=utf-8")
