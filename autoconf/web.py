"""The pages for people and operators (SPEC §3): the settings page and ``/healthz``.

Flask views; the endpoints mail clients call are in :mod:`autoconf.wsgi`, which
hands every other path on to this blueprint. Errors are raised as
:class:`RequestError` and answered by the one handler in :mod:`autoconf.app`.
"""

from __future__ import annotations

import json
from typing import cast
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
    snapshot = service().registry.snapshot
    body = {
        "status": "degraded" if snapshot.broken else "ok",
        "providers": len(snapshot.entries),
        "domains": snapshot.domain_count,
        "broken": [
            {
                "file": b.file,
                "errors": [str(e) for e in b.errors],
                "serving_last_good_version": b.serving_last_good,
            }
            for b in snapshot.broken
        ],
    }
    return Response(json.dumps(body, indent=2) + "\n", content_type=JSON)
