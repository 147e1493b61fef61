"""The endpoints mail clients call (docs/http.md): Thunderbird's autoconfig,
Outlook's POX and JSON autodiscover, Apple's profile. Each is a view from a
:class:`Request` to an :class:`Answer`, with its format's own error document.
"""

from __future__ import annotations

from autoconf.address import Address, domain_from_host, parse_address
from autoconf.errors import BadRequest, NotFound, RequestError
from autoconf.model import UserSettings
from autoconf.pipeline import Answer, Endpoint, Request, Service, text_error, utf8
from autoconf.render import Documents, autoconfig, autodiscover, mobileconfig
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
