"""The one request pipeline: every answer, client endpoint or page, passes here.

A request is read straight from the WSGI environ (:class:`Request`), routed by
a dictionary lookup to an :class:`Endpoint`, answered by its view as an
:class:`Answer`, and sent. This layer alone owns what every answer shares:

- the ``Host`` check, before routing (:func:`autoconf.address.normalize_host`):
  a Host that names no host gets 400 and its reason, on every path;
- the method check: ``OPTIONS`` and a 405 name the allowed methods (``Allow``),
  ``HEAD`` is ``GET`` without the body;
- errors: a view raises :class:`RequestError`, and its endpoint turns it into
  its format's own error document (an XML or JSON document, the page's form
  with the reason, or one line of text);
- the security headers (:data:`ANSWER_HEADERS`), and counting each answer.

Mail clients ask at once after an outage, and an answer is a lookup and a
fill-in of tens of microseconds: no framework request context, URL map or
response object, which would cost as much again (docs/development.md).
"""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import unquote_to_bytes

from werkzeug.wsgi import get_host

from autoconf.address import normalize_host
from autoconf.errors import (
    BadRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RequestError,
    RequestTimeout,
)
from autoconf.lookup.runtime import Lookups
from autoconf.registry import Registry
from autoconf.render import Documents
from autoconf.settings import Settings
from autoconf.signing import Signer
from autoconf.tls_ask import TlsPermission

log = logging.getLogger("autoconf")

TEXT = "text/plain; charset=utf-8"

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

# On every answer, errors included: no sniffing, nothing to run, no framing, no
# referrer, and no cache along the way (answers name the asker's address). An
# answer may carry its own instead (the page its Content-Security-Policy).
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
    registry: Registry[Documents]
    signer: Signer | None = None
    tls: TlsPermission | None = None  # /tls/allowed's verdicts (None: it answers 404)
    lookups: Lookups = field(default_factory=Lookups)  # the per-user lookups of this process


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


class Request:
    """What a view reads of a WSGI request: query parameters, headers, the host, the body."""

    __slots__ = ("environ", "path_value")

    def __init__(self, environ: Environ, path_value: str = "") -> None:
        self.environ = environ
        self.path_value = path_value  # what the route read from the path (an address)

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
                return utf8(_unquoted(value), f"the query parameter {name}")
        return None

    def header(self, name: str) -> str:
        """A request header ("" when absent), by its name as written (``Accept-Language``)."""
        value = self.environ.get("HTTP_" + name.upper().replace("-", "_"), "")
        return str(value)

    @property
    def method(self) -> str:
        return str(self.environ.get("REQUEST_METHOD", "GET"))

    @property
    def host(self) -> str:
        """The Host header as the pipeline normalised it before routing (lower-case
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


def utf8(raw: bytes, what: str) -> str:
    """``raw`` as UTF-8, or BadRequest: an address is never guessed at (no U+FFFD)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(f"{what} is not valid UTF-8") from None


class View(Protocol):
    def __call__(self, service: Service, request: Request, /) -> Answer: ...


def text_error(exc: RequestError, request: Request | None = None) -> Answer:
    """A one-line reason: for endpoints whose clients read no error document."""
    return Answer(exc.status, TEXT, f"{exc.reason}\n".encode())


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str  # as the metrics count it
    methods: tuple[str, ...]  # besides OPTIONS, which every endpoint answers
    view: View
    # The endpoint's error document for a refusal (the request, for the page's form).
    error: Callable[[RequestError, Request], Answer] = text_error
    # The answer to a bug in the view (the page's "went wrong on our side"); None:
    # the exception goes on to gunicorn, which logs it and answers 500.
    failure: Callable[[Request], Answer] | None = None

    @property
    def allow(self) -> str:
        return ", ".join(sorted({*self.methods, "OPTIONS"}))


Route = Callable[[str], "tuple[Endpoint, str] | None"]

_STATUS_LINES = {s.value: f"{s.value} {s.phrase}" for s in HTTPStatus}
# What a path that names no endpoint gets (as Werkzeug words it).
NO_SUCH_PATH = "The requested URL was not found on the server"


class Pipeline:
    """The WSGI app: route, check, answer, send. ``count(endpoint, status)`` is
    called for each answer (``None``: a path that names no endpoint, or a request
    refused for its Host before routing)."""

    def __init__(
        self, service: Service, route: Route, count: Callable[[str | None, int], None]
    ) -> None:
        self.service = service
        self.route = route
        self.count = count

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        routed = self.route(environ.get("PATH_INFO", ""))
        request = Request(environ, routed[1] if routed else "")
        method = request.method
        try:
            check_host(environ)
        except BadRequest as exc:  # on every path: in the endpoint's format, or as text
            answer = routed[0].error(exc, request) if routed else text_error(exc)
            self.count(routed[0].name if routed else None, answer.status)
            return send(answer, method, start_response)
        if routed is None:
            answer = text_error(NotFound(NO_SUCH_PATH))
            self.count(None, answer.status)
            return send(answer, method, start_response)
        endpoint = routed[0]
        if method in endpoint.methods:
            try:
                answer = endpoint.view(self.service, request)
            except RequestError as exc:
                answer = endpoint.error(exc, request)
            except Exception:
                # A bug: counted, so that /metrics (and the 5xx alert of
                # deploy/prometheus/alerts.yml) sees it; logged with its traceback,
                # here or by gunicorn, and never shown in the answer.
                self.count(endpoint.name, 500)
                if endpoint.failure is None:
                    raise
                log.exception("%s: error while answering", endpoint.name)
                return send(endpoint.failure(request), method, start_response)
        elif method == "OPTIONS":
            answer = Answer(200, TEXT, b"", (("Allow", endpoint.allow),))
        else:  # RFC 9110: a 405 names the methods that are allowed; in its format
            refused = endpoint.error(
                MethodNotAllowed(f"this path answers {endpoint.allow}"), request
            )
            answer = Answer(405, refused.content_type, refused.body, (("Allow", endpoint.allow),))
        self.count(endpoint.name, answer.status)
        return send(answer, method, start_response)


def check_host(environ: Environ) -> None:
    """Normalise the request's Host in place (BadRequest for one that names no host),
    so that whatever reads it later, Werkzeug included, reads plain ASCII."""
    raw = environ.get("HTTP_HOST")
    if raw:
        environ["HTTP_HOST"] = normalize_host(raw)


def send(answer: Answer, method: str, start_response: StartResponse) -> list[bytes]:
    headers = [
        ("Content-Type", answer.content_type),
        ("Content-Length", str(len(answer.body))),
        *answer.headers,
    ]
    if answer.headers:  # an answer's own header wins over the shared one
        own = {name.lower() for name, _ in answer.headers}
        headers.extend(h for h in ANSWER_HEADERS if h[0].lower() not in own)
    else:
        headers.extend(ANSWER_HEADERS)
    start_response(_STATUS_LINES[answer.status], headers)
    return [b""] if method == "HEAD" else [answer.body]
