"""Slow and stalled clients, with raw sockets: straight at `mail-autoconf serve` (two
sync workers).

Straight at gunicorn, a request body that stops arriving is answered 408 after
BODY_READ_TIMEOUT and frees its worker; meanwhile another request waits at most
that long. Every connection is closed by the test; processes are stopped by PID.
"""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path

import requests
from lxml import etree

from autoconf.wsgi import BODY_READ_TIMEOUT
from tests.e2e.conftest import CLIENT_DOMAINS_DIR
from tests.e2e.processes import start_service

PROBE_PATH = "/mail/config-v1.1.xml?emailaddress=probe@ssl.test.example"
SLACK = 3.0  # what a loaded test machine may add to a timeout


def connect(port: int, source: str, timeout: float = 10.0) -> socket.socket:
    """A TCP connection to 127.0.0.1 from ``source`` (any of 127.0.0.0/8 is this host)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.bind((source, 0))
        sock.connect(("127.0.0.1", port))
    except BaseException:
        sock.close()
        raise
    return sock


def status_of(data: bytes) -> int | None:
    match = re.match(rb"HTTP/1\.[01] (\d{3}) ", data)
    return int(match.group(1)) if match else None


# ---------------------------------------------------------------------------
# Straight at gunicorn


def stalled_pox(port: int, chunked: bool) -> socket.socket:
    """A POX request whose body stops after 10 bytes: of a Content-Length of 1000, or
    in the middle of a chunk."""
    sock = connect(port, "127.0.0.1", timeout=BODY_READ_TIMEOUT + 10)
    framing = b"Transfer-Encoding: chunked\r\n" if chunked else b"Content-Length: 1000\r\n"
    start = b"3e8\r\n" if chunked else b""
    sock.sendall(
        b"POST /autodiscover/autodiscover.xml HTTP/1.1\r\n"
        + b"Host: autodiscover.ssl.test.example\r\nContent-Type: text/xml\r\n"
        + framing
        + b"\r\n"
        + start
        + b"<?xml vers"
    )
    return sock


def read_answer(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_stalled_bodies_straight_at_serve_get_408_and_free_their_workers(
    tmp_path: Path,
) -> None:
    service, port = start_service(CLIENT_DOMAINS_DIR, tmp_path)  # two sync workers
    stalled: list[socket.socket] = []
    try:
        began = time.monotonic()
        stalled = [stalled_pox(port, chunked) for chunked in (False, True)]
        time.sleep(0.5)  # each worker is now reading one of the bodies
        asked = time.monotonic()
        probe = requests.get(f"http://127.0.0.1:{port}{PROBE_PATH}", timeout=BODY_READ_TIMEOUT + 10)
        waited = time.monotonic() - asked
        assert probe.status_code == 200
        assert waited <= BODY_READ_TIMEOUT + 1, f"the probe waited {waited:.2f} s"
        for sock in stalled:
            answer = read_answer(sock)
            took = time.monotonic() - began
            assert status_of(answer) == 408, answer[:300]
            body = answer.split(b"\r\n\r\n", 1)[1]
            root = etree.fromstring(body)  # the POX endpoint's own error document
            assert root.findtext(".//{*}ErrorCode") == "600"
            assert "stopped arriving" in str(root.findtext(".//{*}DebugData"))
            assert BODY_READ_TIMEOUT - 0.1 <= took <= BODY_READ_TIMEOUT + SLACK, took
        print(
            f"\nstraight at serve: two stalled bodies answered 408 after {BODY_READ_TIMEOUT:g} s;"
            f" the probe waited {waited:.2f} s"
        )
    finally:
        for sock in stalled:
            sock.close()
        service.stop()
    log = service.log_text()
    assert "Traceback" not in log and "WORKER TIMEOUT" not in log, log[-3000:]
    assert re.findall(r'"POST /autodiscover/autodiscover.xml HTTP/1.1" (\d+)', log) == ["408"] * 2
    assert not re.search(r'" 5\d\d ', log), log[-3000:]
