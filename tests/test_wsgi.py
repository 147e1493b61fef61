"""The client endpoints' plain-WSGI layer: routing, methods, bodies, counting.

What each endpoint answers is in tests/test_web.py; here is what the layer
itself must get right now that Flask no longer does it for these paths.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from flask.testing import FlaskClient

from autoconf.errors import PayloadTooLarge
from autoconf.wsgi import (
    AUTOCONFIG,
    JSON_ENDPOINT,
    MOBILECONFIG,
    POX,
    Request,
    route,
)
from tests.conftest import DATA
from tests.test_metrics import requests, scrape

POX_BODY = (DATA / "pox-request.xml").read_bytes()


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


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/healthz",
        "/metrics",
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
def test_other_paths_are_left_to_flask(path: str) -> None:
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
    assert Request({"QUERY_STRING": "e=%FF"}).arg("e") == "\ufffd"


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/mail/config-v1.1.xml", "GET, HEAD, OPTIONS"),
        ("DELETE", "/autodiscover/autodiscover.xml", "GET, HEAD, OPTIONS, POST"),
        ("POST", "/mobileconfig", "GET, HEAD, OPTIONS"),
        ("PATCH", "/autodiscover/autodiscover.json", "GET, HEAD, OPTIONS"),
    ],
)
def test_methods(client: FlaskClient, method: str, path: str, allow: str) -> None:
    refused = client.open(path, method=method)
    assert refused.status_code == 405 and refused.headers["Allow"] == allow
    assert refused.content_type == "text/plain; charset=utf-8"
    assert allow in refused.get_data(as_text=True)
    options = client.open(path, method="OPTIONS")
    assert options.status_code == 200 and options.headers["Allow"] == allow
    assert options.get_data() == b""


def test_head_is_get_without_the_body(client: FlaskClient) -> None:
    query = {"emailaddress": "a@example.com"}
    got = client.get("/mail/config-v1.1.xml", query_string=query)
    head = client.head("/mail/config-v1.1.xml", query_string=query)
    assert head.status_code == 200 and head.get_data() == b""
    assert head.headers["Content-Length"] == str(len(got.get_data()))
    assert head.headers["Content-Type"] == got.headers["Content-Type"]


def test_answers_carry_their_length_and_the_answer_headers(client: FlaskClient) -> None:
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
        # One of each: the layer writes the headers once, Flask adds none.
        names = [name.lower() for name, _ in answer.headers]
        assert len(names) == len(set(names)), names


def test_refusals_are_counted_under_their_endpoint(client: FlaskClient) -> None:
    client.get("/mobileconfig")
    client.put("/autodiscover/autodiscover.json")
    client.options("/autodiscover/autodiscover.xml")
    samples = scrape(client)
    assert requests(samples, "mobileconfig", 400) == 1
    assert requests(samples, "json", 405) == 1
    assert requests(samples, "pox", 200) == 1
