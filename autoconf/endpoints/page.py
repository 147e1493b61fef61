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

from autoconf.address import InvalidDomain, host_for_people, normalize_domain, parse_address
from autoconf.endpoints.clients import handed_out_host, target, user_of
from autoconf.errors import BadRequest, NotFound, RequestError
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


def html(body: str, status: int = 200, lang: str = page.DEFAULT_LANGUAGE, csp: str = "") -> Answer:
    """The page in ``lang``: it depends on Accept-Language and, for the order of the
    steps, on the User-Agent, which caches must know."""
    headers = (
        ("Content-Security-Policy", csp or page.content_security_policy()),
        ("Content-Language", lang),
        ("Vary", "Accept-Language, User-Agent"),
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
    brand = page.brand(entry.provider, domain)
    body = page.settings(
        lang,
        entry.provider,
        address,
        brand=brand,
        device=page.device_of(request.header("User-Agent")),
        profile_url=f"https://{host}/{profile}" if usable else None,
        profile_link=profile if usable else None,
        signed=service.signer is not None,
        user=user_of(service, entry, address),
    )
    return html(body, lang=lang, csp=brand.csp)


def _typed(request: Request) -> str | None:
    """The address as it was typed (read as the view read it: the parameter's name in
    any case), for the form again; None when it is not UTF-8."""
    try:
        return (request.arg("emailaddress") or "")[:MAX_ECHOED]
    except RequestError:
        return None


def page_error(exc: RequestError, request: Request) -> Answer:
    """A page that says, in the reader's language, what went wrong and what to do,
    with the form again and what was typed. What it says is read from the address
    typed (not an address; an address of a domain we lack), or else a general "cannot
    be shown" (a bad Host, a request too long): never the technical reason, in English."""
    typed, lang = _typed(request), language(request)
    value = typed or ""
    try:
        if typed is None:  # not UTF-8: no address, whatever else is wrong
            raise BadRequest("the address is not UTF-8")
        address = parse_address(value) if value else None
    except RequestError:
        body = page.problem(lang, "not_an_address", value)
    else:
        if address is not None and isinstance(exc, NotFound):
            domain = host_for_people(address.domain)
            body = page.problem(lang, "unknown_domain", value, domain=domain)
        else:
            body = page.problem(lang, "cannot_show", value)
    return html(body, exc.status, lang)


def page_failure(request: Request) -> Answer:
    """A bug while making the page: the reader gets a page that says so, in their language."""
    lang = language(request)
    return html(page.problem(lang, "service_error", _typed(request) or ""), 500, lang)


@lru_cache(maxsize=1)
def _style() -> tuple[bytes, str]:
    data = (files("autoconf") / "static" / "page.css").read_bytes()
    return data, '"' + hashlib.sha256(data).hexdigest()[:32] + '"'


def revalidated(
    request: Request,
    content_type: str,
    data: bytes,
    etag: str,
    cache_control: str,
    *headers: tuple[str, str],
) -> Answer:
    """``data`` with its ETag, or 304 and no body when the client has it already."""
    sent = (("ETag", etag), ("Cache-Control", cache_control), *headers)
    if etag in request.header("If-None-Match"):
        return Answer(304, content_type, b"", sent)
    return Answer(200, content_type, data, sent)


def style_view(service: Service, request: Request) -> Answer:
    """The page's style sheet: revalidated on each use (an ETag), as it changes with
    a new release."""
    data, etag = _style()
    return revalidated(request, "text/css; charset=utf-8", data, etag, "no-cache")


# An SVG logo opened on its own is a document of our origin: it may run nothing.
_LOGO_CSP = "default-src 'none'; style-src 'unsafe-inline'; sandbox"


def logo_view(service: Service, request: Request) -> Answer:
    """The provider's logo, for the page (``/logo?domain=D``; the page adds ``&v=`` with
    the logo's digest, so that a new logo is a new URL and an old one may be kept)."""
    raw = request.arg("domain") or ""
    try:
        domain = normalize_domain(raw)
    except InvalidDomain as exc:
        raise BadRequest(f"domain={raw[:64]!r}: {exc}") from None
    entry = service.registry.snapshot.lookup(domain)
    logo = entry.provider.logo if entry is not None else None
    if logo is None:
        raise NotFound(f"no logo for {domain}")
    policy = ("Content-Security-Policy", _LOGO_CSP)
    etag = f'"{logo.digest}"'
    return revalidated(request, logo.media_type, logo.data, etag, "public, max-age=86400", policy)


PAGE = Endpoint("page", ("GET", "HEAD"), page_view, page_error, page_failure)
STYLE = Endpoint("static", ("GET", "HEAD"), style_view)
LOGO = Endpoint("logo", ("GET", "HEAD"), logo_view)
