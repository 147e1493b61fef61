"""The endpoints mail clients call (docs/http.md): Thunderbird's autoconfig,
Outlook's POX and JSON autodiscover, Apple's profile, the CalDAV and CardDAV
``.well-known`` redirects. Each is a view from a :class:`Request` to an
:class:`Answer`, with its format's own error document.
"""

from __future__ import annotations

from autoconf.address import (
    Address,
    InvalidDomain,
    domain_from_host,
    normalize_domain,
    parse_address,
)
from autoconf.errors import BadRequest, NotFound, RequestError
from autoconf.model import UserSettings
from autoconf.pipeline import TEXT, Answer, Endpoint, Request, Service, View, text_error, utf8
from autoconf.render import Documents, autoconfig, autodiscover, dav, mobileconfig, pacc
from autoconf.render.user import user_values
from autoconf.snapshot import Entry, Snapshot

XML = "text/xml; charset=utf-8"
JSON = "application/json"


def target(
    service: Service, raw_address: str | None, host: str
) -> tuple[Address | None, str, Entry[Documents]]:
    """The address (if given), the domain, and its entry; NotFound when there is none.

    Without an address, the domain is the one the Host names (``autoconfig.`` dropped).
    """
    snapshot = service.registry.snapshot
    if raw_address:
        address = parse_address(raw_address)
        entry = snapshot.lookup(address.domain)
        if entry is None:
            raise NotFound(f"no mail configuration for {address.domain}")
        return address, address.domain, entry
    domain = domain_from_host(host)
    entry = snapshot.lookup(domain) if domain else None
    if domain is None or entry is None:
        raise NotFound("no email address given, and the host names no configured domain")
    return None, domain, entry


def user_of(
    service: Service, entry: Entry[Documents], address: Address | None
) -> UserSettings | None:
    """What the provider's per-user lookup has for ``address`` (None: no lookup, no
    address, not found, or the lookup failed: all answered alike, with the default)."""
    lookup = entry.provider.lookup
    if lookup is None or address is None:
        return None
    return service.lookups.find(lookup, entry.provider.file, address)


def per_user(
    service: Service, entry: Entry[Documents], address: Address | None, domain: str
) -> dict[str, str]:
    """The per-user slots' values of the entry's documents for this request."""
    slots = entry.compiled.user_slots
    if slots is None:
        return {}
    return user_values(slots, address, domain, user_of(service, entry, address))


def served_by_name(snapshot: Snapshot[Documents], domain: str) -> bool:
    """Whether a domain is served by name: listed, or under a wildcard; not only
    through the catch-all, which would make every name a served one."""
    if domain in snapshot.exact:
        return True
    labels = domain.split(".")
    return any(".".join(labels[i:]) in snapshot.wildcards for i in range(1, len(labels)))


def handed_out_host(service: Service, request: Request, domain: str) -> str:
    """The host of the URLs an answer hands out (the JSON answer's Url, the page's QR
    code): AUTOCONF_PUBLIC_HOST when set; else the request's Host when it is a served
    domain or its ``autoconfig.``/``autodiscover.`` name; else ``autodiscover.`` of
    ``domain``, the domain being answered. Any other Host is never echoed."""
    public = service.settings.public_host
    if public:
        return public
    host = request.host  # normalised before routing: lower-case A-labels, port checked
    name, _, port = host.partition(":")
    served = domain_from_host(name) if name and not name.startswith("[") else None
    if served is not None and served_by_name(service.registry.snapshot, served):
        # A port is kept where it was one of HTTPS (the URLs are https://).
        https = request.environ.get("wsgi.url_scheme") == "https"
        return host if https and port else name
    return f"autodiscover.{domain}"


def autoconfig_view(service: Service, request: Request) -> Answer:
    raw = request.arg("emailaddress")
    address, domain, entry = target(service, raw, "" if raw else request.host)
    user = per_user(service, entry, address, domain)
    return Answer(200, XML, autoconfig.render(entry.compiled.autoconfig, address, domain, user))


def pox_view(service: Service, request: Request) -> Answer:
    pox = autodiscover.parse_request(request.body(autodiscover.MAX_BODY))
    address, _, entry = target(service, pox.email, "")
    assert address is not None
    user = per_user(service, entry, address, address.domain)
    body = autodiscover.render(entry.compiled.autodiscover, address, pox.response_schema, user)
    return Answer(200, XML, body)


def json_view(service: Service, request: Request) -> Answer:
    email = request.path_value
    if email:  # the path's bytes, as the route read them: UTF-8 or nothing
        email = utf8(email.encode("utf-8", "surrogateescape"), "the address in the path")
    raw = email or request.arg("Email")
    if not raw:
        raise BadRequest("no email address given (Email=...)")
    _, domain, entry = target(service, raw, "")
    host = handed_out_host(service, request, domain)
    body = autodiscover.render_json(request.arg("Protocol") or "", entry.provider, host)
    return Answer(200, JSON, body)


def mobileconfig_view(service: Service, request: Request) -> Answer:
    raw = request.arg("emailaddress")
    if not raw:
        raise BadRequest("no email address given (emailaddress=...)")
    address, domain, entry = target(service, raw, "")
    assert address is not None
    user = per_user(service, entry, address, domain)
    body = mobileconfig.render(entry.compiled.mobileconfig, address, user)
    if service.signer is not None:
        body = service.signer.sign(body)
    disposition = f'attachment; filename="{mobileconfig.filename(domain)}"'
    return Answer(200, mobileconfig.CONTENT_TYPE, body, (("Content-Disposition", disposition),))


def pacc_view(service: Service, request: Request) -> Answer:
    """PACC's document for the domain of ``?domain=`` (tests, tools), else of the Host
    (``ua-auto-config.D``, or D itself): the same bytes whoever asks."""
    raw = request.arg("domain")
    if raw:
        try:
            domain: str | None = normalize_domain(raw)
        except InvalidDomain as exc:
            raise BadRequest(f"domain={raw!r}: {exc}") from None
    else:
        host = request.host
        name = host.partition(":")[0] if host.count(":") == 1 else host
        name = name.removeprefix(pacc.HOST_PREFIX) if name.count(".") >= 2 else name
        domain = domain_from_host(name)
    entry = service.registry.snapshot.lookup(domain) if domain else None
    if domain is None or entry is None:
        raise NotFound("no mail configuration for this host (give ?domain=)")
    body = pacc.render(entry.provider, domain)
    if body is None:
        raise NotFound(f"{domain}: its provider has no server PACC can describe")
    return Answer(200, pacc.CONTENT_TYPE, body)


def well_known_view(kind: str) -> View:
    """``/.well-known/caldav`` or ``/.well-known/carddav`` (RFC 6764): a redirect to
    the provider's URL, the address filled in when the request gives one
    (``emailaddress``), else its base for the domain the Host names. 307, so that
    the client repeats its PROPFIND, body and all, at the new place (RFC 9110;
    RFC 6764 allows 301, 303 or 307, and 303 would turn it into a GET), and
    temporary, as the file it comes from may change."""

    def view(service: Service, request: Request) -> Answer:
        raw = request.arg("emailaddress")
        address, domain, entry = target(service, raw, "" if raw else request.host)
        url = dav.location(entry.compiled.dav, kind, address, domain)
        return Answer(307, TEXT, f"{url}\n".encode(), (("Location", url),))

    return view


def pox_error(exc: RequestError, request: Request | None = None) -> Answer:
    # Exchange answers a malformed request with its error document and HTTP 200.
    status = 200 if exc.status == 400 else exc.status
    return Answer(status, XML, autodiscover.error_document(exc.pox_code, exc.reason))


def json_error(exc: RequestError, request: Request | None = None) -> Answer:
    return Answer(exc.status, JSON, autodiscover.json_error(exc.json_code, exc.reason))


AUTOCONFIG = Endpoint("autoconfig", ("GET", "HEAD"), autoconfig_view, text_error)
# POST only: a GET is 405 with the error document (ErrorCode 600), so that a client
# that tries a GET (Delta Chat) moves on to its next source (docs/clients.md).
POX = Endpoint("pox", ("POST",), pox_view, pox_error)
JSON_ENDPOINT = Endpoint("json", ("GET", "HEAD"), json_view, json_error)
MOBILECONFIG = Endpoint("mobileconfig", ("GET", "HEAD"), mobileconfig_view, text_error)
PACC = Endpoint("pacc", ("GET", "HEAD"), pacc_view, text_error)
# PROPFIND is what CalDAV and CardDAV clients send first (Thunderbird: nothing else).
WELL_KNOWN_METHODS = ("GET", "HEAD", "PROPFIND")
CALDAV = Endpoint("caldav", WELL_KNOWN_METHODS, well_known_view(dav.CALDAV), text_error)
CARDDAV = Endpoint("carddav", WELL_KNOWN_METHODS, well_known_view(dav.CARDDAV), text_error)
