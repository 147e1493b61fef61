"""The one request pipeline: routing, methods, bodies, headers, counting, errors.

What each endpoint answers is in tests/test_web.py; here is what the layer
itself must get right, for every path.
"""

from __future__ import annotations

import io
import json
import logging
import socket
import threading
import time
from typing import Any
from urllib.parse import unquote_to_bytes

import pytest
from lxml import etree
from werkzeug.test import Client, EnvironBuilder, TestResponse

from autoconf import pipeline
from autoconf.app import Application
from autoconf.endpoints import router
from autoconf.endpoints.clients import AUTOCONFIG, JSON_ENDPOINT, MOBILECONFIG, POX, pox_error
from autoconf.endpoints.operator import HEALTHZ
from autoconf.endpoints.page import PAGE
from autoconf.errors import BadRequest, PayloadTooLarge, RequestTimeout
from autoconf.metrics import Metrics
from autoconf.pipeline import Request
from tests.conftest import DATA
from tests.test_metrics import requests, scrape

route = router(Metrics())

POX_BODY = (DATA / "pox-request.xml").read_bytes()
XML = "text/xml; charset=utf-8"
JSON = "application/json"
TEXT = "text/plain; charset=utf-8"
HTML = "text/html; charset=utf-8"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/mail/config-v1.1.xml", (AUTOCONFIG, "")),
        ("/.well-known/autoconfig/mail/config-v1.1.xml", (AUTOCONFIG, "")),
        ("/autodiscover/autodiscover.xml", (POX, "")),
        ("/AutoDiscover/AutoDiscover.XML", (POX, "")),
        ("/Autodiscover/Autodiscover.json", (JSON_ENDPOINT, "")),
        ("/autodiscover/autodiscover.json/v1.0/a@example.com", (JSON_ENDPOINT, "a@example.com")),
        ("/AUTODISCOVER/autodiscover.JSON/v1.0/A@Example.com", (JSON_ENDPOINT, "A@Example.com")),
        # The path's bytes as PEP 3333 hands them over (UTF-8 read as latin-1).
        (
            "/autodiscover/autodiscover.json/v1.0/a@m\xc3\xbcller.example",
            (JSON_ENDPOINT, "a@müller.example"),
        ),
        ("/mobileconfig", (MOBILECONFIG, "")),
    ],
)
def test_routes(path: str, expected: tuple[object, str]) -> None:
    assert route(path) == expected


def test_the_page_and_the_operators_endpoints_are_routed_alike() -> None:
    assert route("/") == (PAGE, "")
    assert route("/healthz") == (HEALTHZ, "")
    metrics = route("/metrics")
    assert metrics is not None and metrics[0].name == "metrics"


@pytest.mark.parametrize(
    "path",
    [
        "/MAIL/config-v1.1.xml",  # Thunderbird writes it exactly; only Outlook's paths vary
        "/mail/config-v1.1.xml/",
        "/Mobileconfig",
        "/autodiscover/autodiscover.xml.bak",
        "/autodiscover/autodiscover.json/",
        "/autodiscover/autodiscover.json/v1.0/",
        "/autodiscover/autodiscover.json/v1.0//a@example.com",
        "/autodiscover/autodiscover.json/V1.0/a@example.com",
        "/autodiscover/autodiscover.json/v1.0/a@exa\nmple.com",
    ],
)
def test_other_paths_name_no_endpoint(path: str) -> None:
    assert route(path) is None


def environ(body: bytes, **extra: Any) -> dict[str, Any]:
    return {"wsgi.input": io.BytesIO(body), **extra}


class Trickle(io.BytesIO):
    """A stream that hands out at most 10 bytes a read, as a socket may."""

    def read(self, size: int | None = -1) -> bytes:
        return super().read(min(10, size if size is not None and size >= 0 else 10))


def test_body_by_content_length() -> None:
    assert Request(environ(b"abcdef", CONTENT_LENGTH="4")).body(100) == b"abcd"
    trickled = {"wsgi.input": Trickle(b"x" * 95), "CONTENT_LENGTH": "95"}
    assert Request(trickled).body(100) == b"x" * 95


def test_body_without_a_length_is_read_only_when_the_server_ended_it() -> None:
    assert Request(environ(b"abc")).body(100) == b""
    assert Request(environ(b"abc", CONTENT_LENGTH="")).body(100) == b""
    assert Request(environ(b"abc", CONTENT_LENGTH="-1")).body(100) == b""
    assert Request(environ(b"abc", **{"wsgi.input_terminated": True})).body(100) == b"abc"


@pytest.mark.parametrize(
    "request_environ",
    [
        environ(b"x" * 10, CONTENT_LENGTH="101"),  # refused before reading
        environ(b"x" * 101, **{"wsgi.input_terminated": True}),  # chunked: read to 101
        {"wsgi.input": Trickle(b"x" * 200), "wsgi.input_terminated": True},
    ],
)
def test_body_over_the_limit_is_refused(request_environ: dict[str, Any]) -> None:
    with pytest.raises(PayloadTooLarge):
        Request(request_environ).body(100)


def test_query_parameters() -> None:
    request = Request({"QUERY_STRING": "x=1&EMAIL=a%40b.example&email=second&Protocol=A+B"})
    assert request.arg("Email") == "a@b.example"  # the first, whatever its case
    assert request.arg("protocol") == "A B"
    assert request.arg("missing") is None
    assert Request({}).arg("Email") is None
    # UTF-8 percent-encoded, and raw UTF-8 as the server hands it over (latin-1).
    assert Request({"QUERY_STRING": "e=m%C3%BCller"}).arg("e") == "müller"
    assert Request({"QUERY_STRING": "e=m\xc3\xbcller"}).arg("e") == "müller"
    # Not UTF-8: refused, never guessed at (no U+FFFD). Other parameters' names may be junk.
    for query in ("e=%FF", "e=%ff%fe@example.com", "e=%ED%A0%80", "e=\xff", "e=%C3"):
        with pytest.raises(BadRequest, match="the query parameter e is not valid UTF-8"):
            Request({"QUERY_STRING": query}).arg("e")
    assert Request({"QUERY_STRING": "%FF=1&e=2"}).arg("e") == "2"


@pytest.mark.parametrize(
    ("method", "path", "allow", "content_type"),
    [
        ("PUT", "/mail/config-v1.1.xml", "GET, HEAD, OPTIONS", "text/plain; charset=utf-8"),
        ("DELETE", "/autodiscover/autodiscover.xml", "OPTIONS, POST", "text/xml; charset=utf-8"),
        ("GET", "/autodiscover/autodiscover.xml", "OPTIONS, POST", "text/xml; charset=utf-8"),
        ("POST", "/mobileconfig", "GET, HEAD, OPTIONS", "text/plain; charset=utf-8"),
        ("PATCH", "/autodiscover/autodiscover.json", "GET, HEAD, OPTIONS", "application/json"),
        ("PUT", "/healthz", "GET, HEAD, OPTIONS", "text/plain; charset=utf-8"),
    ],
)
def test_methods(client: Client, method: str, path: str, allow: str, content_type: str) -> None:
    """A refused method: 405, Allow, and the reason in the endpoint's own error format."""
    refused = client.open(path, method=method)
    assert refused.status_code == 405 and refused.headers["Allow"] == allow
    assert refused.content_type == content_type
    assert allow in refused.get_data(as_text=True)
    options = client.open(path, method="OPTIONS")
    assert options.status_code == 200 and options.headers["Allow"] == allow
    assert options.get_data() == b""


def test_head_is_get_without_the_body(client: Client) -> None:
    query = {"emailaddress": "a@example.com"}
    got = client.get("/mail/config-v1.1.xml", query_string=query)
    head = client.head("/mail/config-v1.1.xml", query_string=query)
    assert head.status_code == 200 and head.get_data() == b""
    assert head.headers["Content-Length"] == str(len(got.get_data()))
    assert head.headers["Content-Type"] == got.headers["Content-Type"]


def test_answers_carry_their_length_and_the_answer_headers(client: Client) -> None:
    answers = [
        client.get("/mail/config-v1.1.xml", query_string={"emailaddress": "a@example.com"}),
        client.get("/mobileconfig", query_string={"emailaddress": "a@nowhere.example"}),
        client.post("/autodiscover/autodiscover.xml", data=POX_BODY),
        client.options("/mobileconfig"),
    ]
    for answer in answers:
        assert answer.headers["Content-Length"] == str(len(answer.get_data()))
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["Cache-Control"] == "no-store"
        # One of each: the layer writes the headers once.
        names = [name.lower() for name, _ in answer.headers]
        assert len(names) == len(set(names)), names


def test_refusals_are_counted_under_their_endpoint(client: Client) -> None:
    client.get("/mobileconfig")
    client.put("/autodiscover/autodiscover.json")
    client.options("/autodiscover/autodiscover.xml")
    samples = scrape(client)
    assert requests(samples, "mobileconfig", 400) == 1
    assert requests(samples, "json", 405) == 1
    assert requests(samples, "pox", 200) == 1


def test_a_view_that_fails_is_counted_500_and_left_to_the_server(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug in a view: gunicorn logs it and answers 500; the count says so (the 5xx
    alert of deploy/prometheus/alerts.yml reads it)."""

    def broken(*args: object) -> str:
        raise RuntimeError("a bug")

    monkeypatch.setattr("autoconf.endpoints.operator.health_status", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        client.get("/healthz")
    assert requests(scrape(client), "healthz", 500) == 1


# ---------------------------------------------------------------------------
# Hosts and addresses that cannot be decoded: a 400 with its reason, on every
# path, and nothing in any log (Werkzeug's, the service's own).

UNDECODABLE_HOSTS = [
    "xn--zz.test",  # an IDNA error: Werkzeug's own URL code raised on it
    "XN--",
    "a..b",  # an empty label: Werkzeug's routing refused it with its own text
    "x" * 64 + ".example",  # a label over 63 octets
    "x" * 300,
    "exa_mple.com",
    "exa mple.com",
    "autoconfig.m\xc3\xbcller.example",  # raw UTF-8, as the server hands it over
    "*.example.org",
    "example.com:99999",
    "a:b:c",
    "[zz]",
]
# Every kind of path: the client endpoints, the page,
# /healthz, /metrics, the style sheet, a merged-slash redirect and a 404.
EVERY_PATH = [
    ("GET", "/mail/config-v1.1.xml?emailaddress=alice@example.com", TEXT),
    ("GET", "/.well-known/autoconfig/mail/config-v1.1.xml", TEXT),
    ("POST", "/autodiscover/autodiscover.xml", XML),
    ("GET", "/Autodiscover/Autodiscover.xml", XML),
    (
        "GET",
        "/autodiscover/autodiscover.json?Email=alice@example.com&Protocol=AutodiscoverV1",
        JSON,
    ),
    ("GET", "/autodiscover/autodiscover.json/v1.0/alice@example.com?Protocol=ActiveSync", JSON),
    ("GET", "/mobileconfig?emailaddress=alice@example.com", TEXT),
    ("GET", "/", HTML),  # the page's own error document: the form, with the reason
    ("GET", "/?emailaddress=alice@example.com", HTML),
    ("GET", "/healthz", TEXT),
    ("GET", "/metrics", TEXT),
    ("GET", "/static/page.css", TEXT),
    ("GET", "/tls/allowed?domain=autoconfig.example.com", TEXT),
    ("GET", "//healthz", TEXT),
    ("GET", "/nonexistent", TEXT),
    ("HEAD", "/", HTML),
]


def call(app: Application, method: str, target: str, host: str, body: bytes = b"") -> TestResponse:
    """One request through the app's WSGI callable itself (Werkzeug's test client works
    the URL out again after the answer, and raises on such hosts itself)."""
    path, _, query = target.partition("?")
    environ = EnvironBuilder(
        path=path, method=method, query_string=query, headers={"Host": host}, data=body
    ).get_environ()
    return answer_of(app, environ)


def answer_of(app: Application, environ: dict[str, Any]) -> TestResponse:
    """The app's answer to exactly this environ (the test client would re-encode
    PATH_INFO and QUERY_STRING, putting U+FFFD where bytes are not UTF-8)."""
    started: list[Any] = []
    data = b"".join(app(environ, lambda *args: started.append(args)))
    status, headers = started[0][0], started[0][1]
    return TestResponse([data], status, headers, request=None)  # type: ignore[arg-type]


def reason(answer: TestResponse) -> str:
    if answer.content_type == XML:
        root = etree.fromstring(answer.get_data())
        return str(root.findtext(".//{*}Error/{*}DebugData"))
    if answer.content_type == JSON:
        return str(json.loads(answer.get_data())["ErrorMessage"])
    if answer.content_type == HTML:
        # The page tells people what to do, in their language, not the technical
        # reason: its alert and its title are what there is to read.
        doc = etree.HTML(answer.get_data())
        alert = doc.find(".//*[@role='alert']")
        assert alert is not None
        return f"{doc.findtext('.//title')}: {' '.join(''.join(alert.itertext()).split())}"
    text = answer.get_data(as_text=True)
    assert text.endswith("\n") and text.count("\n") == 1, text
    return text[:-1]


def logged_by_requests(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What was logged from this thread, where the requests ran (Werkzeug's and
    app.logger's lines, the service's own); the folder watcher's thread is not asked."""
    here = threading.get_ident()
    return [r.getMessage()[:200] for r in caplog.records if r.thread == here]


@pytest.fixture
def quiet_app(app: Application, caplog: pytest.LogCaptureFixture) -> Application:
    """The example app, its start-up lines left behind (the watcher starts on the
    first request): the test sees only what its own requests log."""
    caplog.set_level(logging.DEBUG)
    assert app.test_client().get("/healthz").status_code == 200
    caplog.clear()
    return app


@pytest.mark.parametrize("host", UNDECODABLE_HOSTS)
def test_a_host_that_cannot_be_decoded_is_400_on_every_path(
    quiet_app: Application, caplog: pytest.LogCaptureFixture, host: str
) -> None:
    for method, target, content_type in EVERY_PATH:
        answer = call(quiet_app, method, target, host, POX_BODY if method == "POST" else b"")
        where = (method, target, host)
        assert answer.content_type == content_type, where
        if content_type == XML:  # POX: Exchange's error document, ErrorCode 600, HTTP 200
            assert answer.status_code == 200, where
            assert etree.fromstring(answer.get_data()).findtext(".//{*}ErrorCode") == "600"
        else:
            assert answer.status_code == 400, where
        if method != "HEAD" and content_type == HTML:
            assert reason(answer).startswith("These settings cannot be shown"), where
        elif method != "HEAD":
            assert reason(answer).startswith("the Host header"), where
            assert len(reason(answer)) < 200, where
    assert logged_by_requests(caplog) == []


@pytest.mark.parametrize(
    "host", ["xn--zca.example", "autoconfig.example.com", "EXAMPLE.com.", "127.0.0.1", "[::1]:80"]
)
def test_a_host_that_decodes_reaches_every_path(
    quiet_app: Application, caplog: pytest.LogCaptureFixture, host: str
) -> None:
    """Valid names, one Python's own IDNA codec cannot read back (xn--zca, 'ß')
    among them: no path fails on them, and nothing is logged."""
    for method, target, _ in EVERY_PATH:
        answer = call(quiet_app, method, target, host, POX_BODY if method == "POST" else b"")
        assert answer.status_code < 500 and answer.status_code != 400, (target, host)
    assert logged_by_requests(caplog) == []


def test_refused_hosts_are_counted(client: Client) -> None:
    app = client.application
    call(app, "GET", "/healthz", "xn--zz.test")  # type: ignore[arg-type]
    call(app, "GET", "/mobileconfig?emailaddress=a@example.com", "a..b")  # type: ignore[arg-type]
    samples = scrape(client)
    assert requests(samples, "healthz", 400) == 1  # under the endpoint its path names
    assert requests(samples, "mobileconfig", 400) == 1


NOT_UTF8 = ["%ff%fe", "%C3", "%ED%A0%80", "\xff"]  # the last raw, as latin-1


@pytest.mark.parametrize("local", NOT_UTF8)
def test_an_address_that_is_not_utf8_is_400(
    quiet_app: Application, caplog: pytest.LogCaptureFixture, local: str
) -> None:
    host = {"Host": "autodiscover.example.com"}
    for path, content_type in [
        ("/mail/config-v1.1.xml?emailaddress=", TEXT),
        ("/mobileconfig?emailaddress=", TEXT),
        ("/autodiscover/autodiscover.json?Protocol=AutodiscoverV1&Email=", JSON),
        ("/?emailaddress=", "text/html; charset=utf-8"),
    ]:
        if path.startswith("/?") and not local.startswith("%"):
            # Raw bytes in the request line never reach the app: gunicorn refuses them.
            continue
        environ = EnvironBuilder(path=path.split("?")[0], headers=host).get_environ()
        environ["QUERY_STRING"] = path.split("?")[1] + local + "@example.com"
        answer = answer_of(quiet_app, environ)
        assert (answer.status_code, answer.content_type) == (400, content_type), path
        if content_type == TEXT or content_type == JSON:
            assert b"is not valid UTF-8" in answer.get_data(), path
        else:  # the page, for people: what it is, and what to do
            assert reason(answer).startswith("This is not an email address"), path
        assert "\ufffd" not in answer.get_data(as_text=True), path
    # The v2 form with the address in the path; PEP 3333 hands it over as latin-1.
    raw = unquote_to_bytes(local.encode("latin-1")) + b"@example.com"
    environ = EnvironBuilder(path="/autodiscover/autodiscover.json", headers=host).get_environ()
    environ["PATH_INFO"] = "/autodiscover/autodiscover.json/v1.0/" + raw.decode("latin-1")
    environ["QUERY_STRING"] = "Protocol=AutodiscoverV1"
    answer = answer_of(quiet_app, environ)
    assert (answer.status_code, answer.content_type) == (400, JSON)
    assert json.loads(answer.get_data()) == {
        "ErrorCode": "InvalidRequest",
        "ErrorMessage": "the address in the path is not valid UTF-8",
    }
    # POX: bytes that are not UTF-8 in EMailAddress make the body malformed XML.
    body = POX_BODY.replace(b"alice", unquote_to_bytes(local.encode("latin-1")))
    answer = quiet_app.test_client().post("/autodiscover/autodiscover.xml", data=body)
    assert (answer.status_code, answer.content_type) == (200, XML)
    root = etree.fromstring(answer.get_data())
    assert root.findtext(".//{*}ErrorCode") == "600"
    assert "malformed XML" in str(root.findtext(".//{*}DebugData"))
    assert logged_by_requests(caplog) == []


def test_a_body_that_stops_arriving_is_408(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under gunicorn the body is read from the client's socket: a client that falls
    silent for BODY_READ_TIMEOUT is refused, and nothing more is read from it."""
    monkeypatch.setattr(pipeline, "BODY_READ_TIMEOUT", 0.2)
    with socket.create_server(("127.0.0.1", 0)) as server:
        theirs = socket.create_connection(server.getsockname())
        ours, _ = server.accept()
    with ours, theirs:
        theirs.sendall(b"<?xml vers")  # 10 of 1000 bytes
        request = Request(
            {"wsgi.input": ours.makefile("rb"), "CONTENT_LENGTH": "1000", "gunicorn.socket": ours}
        )
        began = time.monotonic()
        with pytest.raises(RequestTimeout, match="stopped arriving for 0.2 s") as caught:
            request.body(64 * 1024)
        assert 0.2 <= time.monotonic() - began < 2
        assert caught.value.status == 408
        assert ours.gettimeout() is None  # as gunicorn left it, for writing the answer
        # The read side is shut: gunicorn, draining it before it closes, is not kept
        # waiting for the rest of the body (it would linger up to 2 s).
        ours.settimeout(1)
        began = time.monotonic()
        assert ours.recv(10) == b""
        assert time.monotonic() - began < 0.5


def test_a_pox_body_timeout_is_answered_in_the_pox_format() -> None:
    answer = pox_error(RequestTimeout("the request body stopped arriving for 5 s"))
    assert (answer.status, answer.content_type) == (408, XML)
    assert etree.fromstring(answer.body).findtext(".//{*}ErrorCode") == "600"
