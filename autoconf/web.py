"""The pages for people and operators (SPEC §3): the settings page and ``/healthz``.

Flask views; the endpoints mail clients call are in :mod:`autoconf.wsgi`, which
hands every other path on to this blueprint. Errors are raised as
:class:`RequestError` and answered by the one handler in :mod:`autoconf.app`.
"""

from __future__ import annotations

import ipaddress
import json
from datetime import UTC, datetime
from typing import Any, cast
from urllib.parse import quote

from flask import Blueprint, Response, current_app, request

from autoconf.render import page
from autoconf.wsgi import JSON, Request, Service, handed_out_host, target

blueprint = Blueprint("autoconf", __name__)


def service() -> Service:
    return cast(Service, current_app.extensions["autoconf"])


def page_language() -> str:
    """``?lang=`` when it names a language we have, else the browser's choice, else English."""
    asked = (request.args.get("lang") or "").strip().lower()
    if asked in page.LANGUAGES:
        return asked
    return request.accept_languages.best_match(page.LANGUAGES) or page.DEFAULT_LANGUAGE


def html(body: str, status: int = 200) -> Response:
    response = Response(body, status, content_type=page.CONTENT_TYPE)
    response.headers["Content-Security-Policy"] = page.CSP
    return response


@blueprint.get("/", endpoint="page")
def page_view() -> Response:
    language = page_language()
    raw = Request(request.environ).arg("emailaddress")
    if not raw:
        return html(page.form(language))
    address, domain, entry = target(service(), raw, "")
    assert address is not None
    usable = entry.compiled.mobileconfig.shape.template is not None
    profile = f"mobileconfig?emailaddress={quote(address.full)}"
    # The link stays on the page's own origin (relative to "/"); the QR code, which
    # a phone scans, names a host the service vouches for (handed_out_host).
    host = handed_out_host(service(), Request(request.environ), domain)
    body = page.settings(
        language,
        entry.provider,
        address,
        profile_url=f"https://{host}/{profile}" if usable else None,
        profile_link=profile if usable else None,
        signed=service().signer is not None,
    )
    return html(body)


@blueprint.get("/healthz", endpoint="healthz")
def healthz_view() -> Response:
    """Status and counts for anyone (a load balancer, a probe from outside); file
    names, paths and error texts only for the operator on the machine itself
    (a loopback peer, with no forwarding header: nothing that came through a proxy)."""
    registry = service().registry
    snapshot = registry.snapshot
    problems = snapshot.broken or snapshot.contests or snapshot.held or registry.held_back
    body: dict[str, object] = {
        "status": "degraded" if problems or not snapshot.entries else "ok",
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
            "state": str(registry.state.path) if registry.state.usable else None,
        }
    return Response(json.dumps(body, indent=2) + "\n", content_type=JSON)


FORWARDING_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")


def is_operator(environ: dict[str, Any]) -> bool:
    """A request from this machine that no proxy passed on: the operator's own
    curl, a local monitoring agent. Behind ProxyFix the peer is the client the
    proxy names, so a request through nginx is never one."""
    if any(name in environ for name in FORWARDING_HEADERS):
        return False
    try:
        return ipaddress.ip_address(environ.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds")
