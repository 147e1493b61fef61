"""The endpoints mail clients call (SPEC §3), answered in plain WSGI.

Autoconfig, Outlook's POX and JSON autodiscover and Apple's profile are what
every client of a hoster asks at once after an outage. Their answers are a
lookup and a fill-in of tens of microseconds; Flask's request context, URL
map and response objects would cost as much again and give them nothing. So
each is a view from a :class:`Request` (read straight from the environ) to an
:class:`Answer`, and :func:`machine_endpoints` routes their paths by a
dictionary lookup. Every other path goes on to Flask: the page, ``/healthz``,
``/metrics`` and every 404.

Errors are raised as :class:`RequestError` and become an answer in one place,
in the format of the endpoint that failed (:data:`ENDPOINTS`).

Before any routing, every request's ``Host`` is checked and normalised
(:func:`autoconf.address.normalize_host`): one that names no host is refused
with 400 and its reason here, on every path, so that neither these views nor
Flask and Werkzeug behind them ever see one they cannot decode.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import unquote_to_bytes

from werkzeug.wsgi import get_host

from autoconf.address import Address, domain_from_host, normalize_host, parse_address
from autoconf.errors import BadRequest, NotFound, PayloadTooLarge, RequestError, RequestTimeout
from autoconf.registry import Registry
from autoconf.render import Compiled, autoconfig, autodiscover, mobileconfig
from autoconf.settings import Settings
from autoconf.signing import Signer
from autoconf.snapshot import Entry, Snapshot

XML = "text/xml; charset=utf-8"
JSON = "application/json"
TEXT = "text/plain; charset=utf-8"

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

# On every answer, errors included: no sniffing, nothing to run, no framing, no
# referrer, and no cache along the way (answers name the asker's address). A view
# may set its own (the page sets its own Content-Security-Policy).
ANSWER_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
)

# Seconds a client may fall silent while sending a request body before it is
# answered 408. Under gunicorn's sync workers a stalled body holds a worker: this
# bounds each wait far below gunicorn's 30 s worker timeout. (A socket timeout:
# it bounds each pause, as nginx's client_body_timeout does, not the whole body;
# in front, nginx reads whole bodies before it passes them on.)
BODY_READ_TIMEOUT = 5.0


@dataclass
class Service:
    """What the views need: the settings and the current snapshot.

    A reload replaces the registry's snapshot whole; a view reads it once.
    """

    settings: Settings
    registry: Registry[Compiled]
    signer: Signer | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


class Request:
    """What a view reads of a WSGI request: query parameters, the host, the body."""

    __slots__ = ("environ",)

    def __init__(self, environ: Environ) -> None:
        self.environ = environ

    def arg(self, name: str) -> str | None:
        """The first query parameter ``name``, compared case-insensitively (Outlook
        writes Email). Read straight from the query string: the views need one or
        two values, not a whole multi-dictionary."""
        wanted = name.lower()
        # WSGI hands the query over as bytes in latin-1 clothing; the values are UTF-8.
        query = self.environ.get("QUERY_STRING", "").encode("latin-1", "replace")
        for part in query.split(b"&"):
            key, _, value = part.partition(b"=")
            if _unquoted(key).decode("utf-8", "replace").lower() == wanted:
                return _utf8(_unquoted(value), f"the query parameter {name}")
        return None

    @property
    def host(self) -> str:
        """The Host header as check_host normalised it before routing (lower-case
        A-labels, a port checked), else the server's own name; "" for none."""
        return get_host(self.environ)

    def body(self, limit: int) -> bytes:
        """The request body; PayloadTooLarge past ``limit``, with or without Content-Length.

        A body without a length is read only where the server has de-chunked it
        (``wsgi.input_terminated``, as gunicorn does); otherwise it is empty.
        """
        stream = self.environ["wsgi.input"]
        length = self.environ.get("CONTENT_LENGTH", "")
        if length.isdigit():  # digits only: no sign, no space
            if int(length) > limit:  # refused before reading any of it
                raise _too_large(limit)
            remaining = int(length)
        elif self.environ.get("wsgi.input_terminated"):
            remaining = limit + 1
        else:
            return b""
        # gunicorn reads the body from the client's socket as the view asks for it:
        # a client that stops sending would hold this worker until gunicorn kills it.
        sock = self.environ.get("gunicorn.socket")
        before = sock.gettimeout() if isinstance(sock, socket.socket) else None
        if isinstance(sock, socket.socket):
            sock.settimeout(BODY_READ_TIMEOUT)
        chunks: list[bytes] = []
        try:
            while remaining > 0:  # a stream may hand out less than asked for, so read on
                chunk = stream.read(remaining)
                if not chunk:
                    break
                chunks.append(chunk)
                remaining -= len(chunk)
        except TimeoutError:
            _stop_reading(sock)
            raise RequestTimeout(
                f"the request body stopped arriving for {BODY_READ_TIMEOUT:g} s"
            ) from None
        finally:
            if isinstance(sock, socket.socket):
                sock.settimeout(before)  # writing the answer is gunicorn's, as before
        body = b"".join(chunks)
        if len(body) > limit:
            raise _too_large(limit)
        return body


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"the request body is larger than {limit // 1024} KiB")


def _stop_reading(sock: object) -> None:
    """After a stalled body, no more reading from the client: gunicorn, closing the
    connection after the answer, would otherwise linger up to 2 s more waiting for
    the rest of it. (A TLS socket is left alone: shutting it down ends its TLS.)"""
    if isinstance(sock, socket.socket) and not isinstance(sock, ssl.SSLSocket):
        try:
            sock.shutdown(socket.SHUT_RD)
        except OSError:
            pass  # already gone


def _unquoted(raw: bytes) -> bytes:
    return unquote_to_bytes(raw.replace(b"+", b" "))


def _utf8(raw: bytes, what: str) -> str:
    """``raw`` as UTF-8, or BadRequest: an address is never guessed at (no U+FFFD)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(f"{what} is not valid UTF-8") from None


def target(
    service: Service, raw_address: str | None, host: str
) -> tuple[Address | None, str, Entry[Compiled]]:
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


# ---------------------------------------------------------------------------
# Views: a Request in, an Answer out


def served_by_name(snapshot: Snapshot[Compiled], domain: str) -> bool:
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


def autoconfig_view(service: Service, request: Request, _: str) -> Answer:
    raw = request.arg("emailaddress")
    address, domain, entry = target(service, raw, "" if raw else request.host)
    return Answer(200, XML, autoconfig.render(entry.compiled.autoconfig, address, domain))


def pox_view(service: Service, request: Request, _: str) -> Answer:
    if request.environ["REQUEST_METHOD"] != "POST":
        # As Exchange answers a browser: an error document, HTTP 200.
        return Answer(200, XML, autodiscover.error_document(600, "send a POST request"))
    pox = autodiscover.parse_request(request.body(autodiscover.MAX_BODY))
    address, _, entry = target(service, pox.email, "")
    assert address is not None
    body = autodiscover.render(entry.compiled.autodiscover, address, pox.response_schema)
    return Answer(200, XML, body)


def json_view(service: Service, request: Request, email: str) -> Answer:
    if email:  # the path's bytes, as route() read them: UTF-8 or nothing
        email = _utf8(email.encode("utf-8", "surrogateescape"), "the address in the path")
    raw = email or request.arg("Email")
    if not raw:
        raise BadRequest("no email address given (Email=...)")
    _, domain, entry = target(service, raw, "")
    host = handed_out_host(service, request, domain)
    body = autodiscover.render_json(request.arg("Protocol") or "", entry.provider, host)
    return Answer(200, JSON, body)


def mobileconfig_view(service: Service, request: Request, _: str) -> Answer:
    raw = request.arg("emailaddress")
    if not raw:
        raise BadRequest("no email address given (emailaddress=...)")
    address, domain, entry = target(service, raw, "")
    assert address is not None
    body = mobileconfig.render(entry.compiled.mobileconfig, address)
    if service.signer is not None:
        body = service.signer.sign(body)
    disposition = f'attachment; filename="{mobileconfig.filename(domain)}"'
    return Answer(200, mobileconfig.CONTENT_TYPE, body, (("Content-Disposition", disposition),))


# ---------------------------------------------------------------------------
# Errors, in each endpoint's format


def text_error(exc: RequestError) -> Answer:
    """A one-line reason: for endpoints whose clients read no error document."""
    return Answer(exc.status, TEXT, f"{exc.reason}\n".encode())


def pox_error(exc: RequestError) -> Answer:
    # Exchange answers a malformed request with its error document and HTTP 200.
    status = 200 if exc.status == 400 else exc.status
    return Answer(status, XML, autodiscover.error_document(exc.pox_code, exc.reason))


def json_error(exc: RequestError) -> Answer:
    return Answer(exc.status, JSON, autodiscover.json_error(exc.json_code, exc.reason))


# ---------------------------------------------------------------------------
# Routing


class View(Protocol):
    def __call__(self, service: Service, request: Request, email: str, /) -> Answer: ...


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str  # as the metrics count it
    methods: tuple[str, ...]  # besides OPTIONS, which every endpoint answers
    view: View
    error: Callable[[RequestError], Answer]

    @property
    def allow(self) -> str:
        return ", ".join(sorted({*self.methods, "OPTIONS"}))


AUTOCONFIG = Endpoint("autoconfig", ("GET", "HEAD"), autoconfig_view, text_error)
POX = Endpoint("pox", ("GET", "HEAD", "POST"), pox_view, pox_error)
JSON_ENDPOINT = Endpoint("json", ("GET", "HEAD"), json_view, json_error)
MOBILECONFIG = Endpoint("mobileconfig", ("GET", "HEAD"), mobileconfig_view, text_error)

ENDPOINTS = {
    "/mail/config-v1.1.xml": AUTOCONFIG,
    "/.well-known/autoconfig/mail/config-v1.1.xml": AUTOCONFIG,
    "/autodiscover/autodiscover.xml": POX,
    "/autodiscover/autodiscover.json": JSON_ENDPOINT,
    "/mobileconfig": MOBILECONFIG,
}
# The v2 form with the address in the path: .../v1.0/alice@example.com.
JSON_V1_PREFIX = "/autodiscover/autodiscover.json/v1.0/"
# Outlook writes the autodiscover paths in any letter case; the rest of the path
# (an address in the v2 form) is left as it is.
CASE_INSENSITIVE_PREFIXES = ("/autodiscover/autodiscover.xml", "/autodiscover/autodiscover.json")

_STATUS_LINES = {s.value: f"{s.value} {s.phrase}" for s in HTTPStatus}


def route(path: str) -> tuple[Endpoint, str] | None:
    """The endpoint of a path (compared as Outlook writes it) and the address the
    path carries ("" if none); None for a path that is not a client endpoint."""
    endpoint = ENDPOINTS.get(path)
    if endpoint is not None:
        return endpoint, ""
    lowered = path[:40].lower()
    for prefix in CASE_INSENSITIVE_PREFIXES:
        if lowered.startswith(prefix):
            path = prefix + path[len(prefix) :]
            break
    else:
        return None
    endpoint = ENDPOINTS.get(path)
    if endpoint is not None:
        return endpoint, ""
    if path.startswith(JSON_V1_PREFIX):
        # As PEP 3333 hands it over: the decoded path's bytes as latin-1. Bytes that
        # are not UTF-8 are kept (surrogateescape) for the view to refuse.
        raw = path[len(JSON_V1_PREFIX) :].encode("latin-1", "replace")
        email = raw.decode("utf-8", "surrogateescape")
        # Not empty, no leading slash, no line feed after the first character (as
        # Werkzeug's <path:...>, which served this route before, matched).
        if email and email[0] != "/" and "\n" not in email[1:]:
            return JSON_ENDPOINT, email
    return None


def check_host(environ: Environ) -> None:
    """Normalise the request's Host in place (BadRequest for one that names no host),
    so that whatever reads it later, Werkzeug included, reads plain ASCII."""
    raw = environ.get("HTTP_HOST")
    if raw:
        environ["HTTP_HOST"] = normalize_host(raw)


def machine_endpoints(
    service: Service, count: Callable[[str | None, int], None], others: WSGIApp
) -> WSGIApp:
    """A WSGI app answering the client endpoints, and handing any other path to
    ``others``; ``count(endpoint, status)`` is called for each answer it gives
    (``None``: a request refused before routing, for its Host)."""

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        routed = route(environ.get("PATH_INFO", ""))
        method = environ.get("REQUEST_METHOD", "GET")
        try:
            check_host(environ)
        except BadRequest as exc:  # on every path: in the endpoint's format, or as text
            answer = routed[0].error(exc) if routed else text_error(exc)
            count(routed[0].name if routed else None, answer.status)
            return send(answer, method, start_response)
        if routed is None:
            return others(environ, start_response)
        endpoint, email = routed
        if method in endpoint.methods:
            try:
                answer = endpoint.view(service, Request(environ), email)
            except RequestError as exc:
                answer = endpoint.error(exc)
        elif method == "OPTIONS":
            answer = Answer(200, TEXT, b"", (("Allow", endpoint.allow),))
        else:  # RFC 9110: a 405 names the methods that are allowed
            reason = f"this path answers {endpoint.allow}\n".encode()
            answer = Answer(405, TEXT, reason, (("Allow", endpoint.allow),))
        count(endpoint.name, answer.status)
        return send(answer, method, start_response)

    return app


def send(answer: Answer, method: str, start_response: StartResponse) -> list[bytes]:
    headers = [
        ("Content-Type", answer.content_type),
        ("Content-Length", str(len(answer.body))),
        *answer.headers,
        *ANSWER_HEADERS,
    ]
    start_response(_STATUS_LINES[answer.status], headers)
    return [b""] if method == "HEAD" else [answer.body]
