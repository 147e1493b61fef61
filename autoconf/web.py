"""Routes (SPEC §3). Each view parses the request, asks the registry, calls a renderer.

Errors are raised as :class:`RequestError` and answered by the one handler in
:mod:`autoconf.app`, in the format of the endpoint that failed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import cast
from urllib.parse import quote, unquote_to_bytes

from flask import Blueprint, Response, current_app, request

from autoconf.address import Address, domain_from_host, parse_address
from autoconf.errors import BadRequest, NotFound, PayloadTooLarge
from autoconf.registry import Entry, Registry
from autoconf.render import Compiled, autoconfig, autodiscover, mobileconfig, page
from autoconf.settings import Settings
from autoconf.signing import Signer

XML = "text/xml; charset=utf-8"
JSON = "application/json"

blueprint = Blueprint("autoconf", __name__)


@dataclass
class Service:
    """What the views need: the settings and the current snapshot.

    A reload replaces the registry's snapshot whole; a view reads it once.
    """

    settings: Settings
    registry: Registry[Compiled]
    signer: Signer | None = None


def service() -> Service:
    return cast(Service, current_app.extensions["autoconf"])


def _arg(name: str) -> str | None:
    """The first query parameter ``name``, compared case-insensitively (Outlook writes
    Email). Read straight from the query string: the views need one or two values,
    not Werkzeug's whole multi-dictionary."""
    wanted = name.lower()
    # WSGI hands the query over as bytes in latin-1 clothing; the values are UTF-8.
    query = request.environ.get("QUERY_STRING", "").encode("latin-1", "replace")
    for part in query.split(b"&"):
        key, _, value = part.partition(b"=")
        if _decoded(key).lower() == wanted:
            return _decoded(value)
    return None


def _decoded(raw: bytes) -> str:
    return unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8", "replace")


def _target(raw_address: str | None) -> tuple[Address | None, str, Entry[Compiled]]:
    """The address (if given), the domain, and its entry; raise when there is none."""
    snapshot = service().registry.snapshot
    if raw_address:
        address = parse_address(raw_address)
        entry = snapshot.lookup(address.domain)
        if entry is None:
            raise NotFound(f"no mail configuration for {address.domain}")
        return address, address.domain, entry
    domain = domain_from_host(request.host)
    entry = snapshot.lookup(domain) if domain else None
    if domain is None or entry is None:
        raise NotFound("no email address given, and the host names no configured domain")
    return None, domain, entry


def _body(limit: int) -> bytes:
    """The request body; PayloadTooLarge past ``limit``, with or without Content-Length.

    (A chunked body has no length to refuse up front, and the stream that
    Werkzeug gives for it just ends at the limit.)
    """
    chunks: list[bytes] = []
    size = 0
    while size <= limit:  # a stream may hand out less than asked for, so read on
        chunk = request.stream.read(limit + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    body = b"".join(chunks)
    if size > limit:
        raise PayloadTooLarge(f"the request body is larger than {limit // 1024} KiB")
    return body


@blueprint.get("/mail/config-v1.1.xml", endpoint="autoconfig")
@blueprint.get("/.well-known/autoconfig/mail/config-v1.1.xml", endpoint="autoconfig")
def autoconfig_view() -> Response:
    address, domain, entry = _target(_arg("emailaddress"))
    body = autoconfig.render(entry.compiled.autoconfig, address, domain)
    return Response(body, content_type=XML)


@blueprint.route("/autodiscover/autodiscover.xml", methods=["GET", "POST"], endpoint="pox")
def autodiscover_view() -> Response:
    if request.method != "POST":
        # As Exchange answers a browser: an error document, HTTP 200.
        body = autodiscover.error_document(600, "send a POST request")
        return Response(body, content_type=XML)
    pox = autodiscover.parse_request(_body(autodiscover.MAX_BODY))
    address, _, entry = _target(pox.email)
    assert address is not None
    body = autodiscover.render(entry.compiled.autodiscover, address, pox.response_schema)
    return Response(body, content_type=XML)


@blueprint.get("/autodiscover/autodiscover.json", endpoint="json")
@blueprint.get("/autodiscover/autodiscover.json/v1.0/<path:email>", endpoint="json")
def autodiscover_json_view(email: str | None = None) -> Response:
    raw = email if email is not None else _arg("Email")
    if not raw:
        raise BadRequest("no email address given (Email=...)")
    _, _, entry = _target(raw)
    public_host = service().settings.public_host or request.host
    if domain_from_host(public_host) is None:  # Werkzeug gives "" for a Host it refuses
        raise BadRequest("the Host header names no host to point at; set AUTOCONF_PUBLIC_HOST")
    body = autodiscover.render_json(_arg("Protocol") or "", entry.provider, public_host)
    return Response(body, content_type=JSON)


@blueprint.get("/mobileconfig", endpoint="mobileconfig")
def mobileconfig_view() -> Response:
    raw = _arg("emailaddress")
    if not raw:
        raise BadRequest("no email address given (emailaddress=...)")
    address, domain, entry = _target(raw)
    assert address is not None
    body = mobileconfig.render(entry.compiled.mobileconfig, address)
    signer = service().signer
    if signer is not None:
        body = signer.sign(body)
    disposition = f'attachment; filename="{mobileconfig.filename(domain)}"'
    return Response(
        body,
        content_type=mobileconfig.CONTENT_TYPE,
        headers={"Content-Disposition": disposition},
    )


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
    raw = _arg("emailaddress")
    if not raw:
        return html(page.form(language))
    address, domain, entry = _target(raw)
    assert address is not None
    usable = entry.compiled.mobileconfig.shape.template is not None
    public = service().settings.public_host
    root = f"https://{public}/" if public else request.host_url
    profile_url = f"{root}mobileconfig?emailaddress={quote(address.full)}" if usable else None
    body = page.settings(
        language,
        entry.provider,
        address,
        profile_url=profile_url,
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
