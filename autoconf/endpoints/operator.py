"""The operator's endpoints (docs/http.md): ``/healthz``, ``/metrics`` and
``/tls/allowed``.

``/healthz`` tells anyone (a load balancer, a probe from outside) the status and
counts; file names, paths and error texts only the operator on the machine
itself. ``/metrics`` is for the operator's Prometheus, and for nothing that came
through a reverse proxy. ``/tls/allowed?domain=NAME`` is for the TLS front on
the same machine (Caddy's on-demand ``ask``), and only for it
(:mod:`autoconf.tls_ask`).
"""

from __future__ import annotations

import ipaddress
import json
from datetime import UTC, datetime

from autoconf.address import InvalidDomain
from autoconf.endpoints.clients import JSON
from autoconf.errors import BadRequest, NotFound
from autoconf.metrics import Metrics, health_status
from autoconf.pipeline import (
    NO_SUCH_PATH,
    TEXT,
    Answer,
    Endpoint,
    Environ,
    Request,
    Service,
    text_error,
)

FORWARDING_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")


def forwarded(environ: Environ) -> bool:
    """Whether a proxy passed the request on (nginx, an Ingress): it is from the internet."""
    return any(name in environ for name in FORWARDING_HEADERS)


def is_operator(environ: Environ) -> bool:
    """A request from this machine that no proxy passed on: the operator's own
    curl, a local monitoring agent. Behind ProxyFix the peer is the client the
    proxy names, so a request through nginx is never one."""
    if forwarded(environ):
        return False
    try:
        return ipaddress.ip_address(environ.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


def healthz_view(service: Service, request: Request) -> Answer:
    registry = service.registry
    snapshot = registry.snapshot
    failing = service.lookups.failing()
    body: dict[str, object] = {
        "status": health_status(snapshot, registry.held_back, bool(failing)),
        "providers": len(snapshot.entries),
        "domains": snapshot.domain_count,
        "broken_files": len(snapshot.broken),
        "contested_domains": len(snapshot.contests),
    }
    if is_operator(request.environ):
        body |= {
            "broken": [
                {
                    "file": b.file,
                    "errors": [str(e) for e in b.errors],
                    "serving_last_good_version": b.serving_last_good,
                }
                for b in snapshot.broken
            ],
            "contested": [
                {"domain": c.domain, "served_by": c.owner, "claimed_by": list(c.claimants)}
                for c in snapshot.contests
            ],
            "missing": [{"file": h.file, "serving_until": _iso(h.until)} for h in snapshot.held],
            "held_back": registry.held_back or None,
            # Which source failed and why: never an address, never a credential.
            "lookups_failing": [
                {"file": f.file, "source": f.source, "reason": f.reason, "since": _iso(f.since)}
                for f in failing
            ],
            "state": str(registry.state.path) if registry.state.usable else None,
        }
    return Answer(200, JSON, (json.dumps(body, indent=2) + "\n").encode())


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds")


def metrics_endpoint(metrics: Metrics) -> Endpoint:
    """``GET /metrics`` of these metrics. A request that came through a reverse
    proxy gets what a path that does not exist gets."""

    def metrics_view(service: Service, request: Request) -> Answer:
        if forwarded(request.environ):
            raise NotFound(NO_SUCH_PATH)
        content_type, body = metrics.exposition()
        return Answer(200, content_type, body)

    return Endpoint("metrics", ("GET", "HEAD"), metrics_view, text_error)


HEALTHZ = Endpoint("healthz", ("GET", "HEAD"), healthz_view)


def tls_allowed_view(service: Service, request: Request) -> Answer:
    """200 when the name may have a certificate, 403 (or 429: ask later) when not;
    the reason as one line. Only the operator's machine asks (:func:`is_operator`)."""
    if service.tls is None or not is_operator(request.environ):
        raise NotFound(NO_SUCH_PATH)
    name = request.arg("domain")
    if not name:
        raise BadRequest("give the name as ?domain=NAME")
    try:
        verdict = service.tls.verdict(name, service.registry.snapshot, service.settings.public_host)
    except InvalidDomain as exc:
        raise BadRequest(f"{name[:100]!r} is not a host name: {exc}") from None
    word = "allowed" if verdict.allowed else "refused"
    return Answer(verdict.status, TEXT, f"{word}: {verdict.reason}\n".encode())


TLS_ALLOWED = Endpoint("tls_allowed", ("GET", "HEAD"), tls_allowed_view, text_error)
