"""The page for people who set up mail by hand (``GET /``, docs/http.md), and its
style sheet. The page's errors are the form again, with the reason and what was typed.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib.resources import files
from urllib.parse import quote

from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

from autoconf.endpoints.clients import handed_out_host, target, user_of
from autoconf.errors import RequestError
from autoconf.pipeline import Answer, Endpoint, Request, Service
from autoconf.render import page

# What the form shows again of what was typed, at most (an address is at most 254).
MAX_ECHOED = 320


def language(request: Request) -> str:
    """``?lang=`` when it names a language we have, else the browser's choice, else English."""
    asked = (request.arg("lang") or "").strip().lower()
    if asked in page.LANGUAGES:
        return asked
    accepted = parse_accept_header(request.header("Accept-Language"), LanguageAccept)
    # In the browser's order of preference (Werkzeug sorts by quality), each tag
    # as written or by its primary language: de-CH before en;q=0.5 is German,
    # en-GB before de;q=0.5 English. (Werkzeug's best_match prefers any exact
    # match, whatever its quality, to a regional one.)
    for tag, quality in accepted:
        if quality <= 0:
            continue
        tag = tag.lower()
        for candidate in (tag, tag.split("-", 1)[0]):
            if candidate in page.LANGUAGES:
                return candidate
    return page.DEFAULT_LANGUAGE


def html(body: str, status: int = 200, lang: str = page.DEFAULT_LANGUAGE) -> Answer:
    """The page in ``lang``: it depends on Accept-Language, which caches must know."""
    headers = (
        ("Content-Security-Policy", page.CSP),
        ("Content-Language", lang),
        ("Vary", "Accept-Language"),
    )
    return Answer(status, page.CONTENT_TYPE, body.encode(), headers)


def page_view(service: Service, request: Request) -> Answer:
    lang = language(request)
    raw = request.arg("emailaddress")
    if not raw:
        return html(page.form(lang), lang=lang)
    address, domain, entry = target(service, raw, "")
    assert address is not None
    usable = entry.compiled.mobileconfig.shape.template is not None
    profile = f"mobileconfig?emailaddress={quote(address.full)}"
    # The link stays on the page's own origin (relative to "/"); the QR code, which
    # a phone scans, names a host the service vouches for (handed_out_host).
    host = handed_out_host(service, request, domain)
    body = page.settings(
        lang,
        entry.provider,
        address,
        profile_url=f"https://{host}/{profile}" if usable else None,
        profile_link=profile if usable else None,
        signed=service.signer is not None,
        user=user_of(service, entry, address),
    )
    return html(body, lang=lang)


def page_error(exc: RequestError, request: Request) -> Answer:
    """The form again, with the reason and the address as it was typed (read as the
    view read it: the parameter's name in any case)."""
    try:
        value = (request.arg("emailaddress") or "")[:MAX_ECHOED]
    except RequestError:  # not UTF-8: nothing to show again
        value = ""
    lang = language(request)
    return html(page.form(lang, error=exc.reason, value=value), exc.status, lang)


@lru_cache(maxsize=1)
def _style() -> tuple[bytes, str]:
    data = (files("autoconf") / "static" / "page.css").read_bytes()
    return data, '"' + hashlib.sha256(data).hexdigest()[:32] + '"'


def style_view(service: Service, request: Request) -> Answer:
    """The page's style sheet: revalidated on each use (an ETag), as it changes with
    a new release."""
    data, etag = _style()
    headers = (("ETag", etag), ("Cache-Control", "no-cache"))
    if etag in request.header("If-None-Match"):
        return Answer(304, "text/css; charset=utf-8", b"", headers)
    return Answer(200, "text/css; charset=utf-8", data, headers)


PAGE = Endpoint("page", ("GET", "HEAD"), page_view, page_error)
STYLE = Endpoint("static", ("GET", "HEAD"), style_view)
