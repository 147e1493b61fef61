"""Slow and stalled clients, with raw sockets: straight at `mail-autoconf serve` (two
sync workers), and through the real nginx site of deploy/nginx/ in front of it.

Straight at gunicorn, a request body that stops arriving is answered 408 after
BODY_READ_TIMEOUT and frees its worker; meanwhile another request waits at most
that long. Through nginx, hundreds of connections that send half a request and
then nothing, and stalled bodies, never reach the service: a probe from another
client address keeps being answered within a second, nginx lets go of each slow
connection after its timeout, and one client address gets 20 requests at a time,
the rest 429. Every connection is closed by the test; processes are stopped by PID.
"""

from __future__ import annotations

import re
import resource
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
import urllib3
from lxml import etree

from autoconf.pipeline import BODY_READ_TIMEOUT
from tests.e2e.conftest import CLIENT_DOMAINS, CLIENT_DOMAINS_DIR, UNLISTED_NAMES
from tests.e2e.nginx import DEPLOY, Nginx, start_nginx
from tests.e2e.processes import Started, start_service
from tests.helpers import wait_for

PROBE_PATH = "/mail/config-v1.1.xml?emailaddress=probe@ssl.test.example"
AUTOCONFIG_HOST = "autoconfig.ssl.test.example"
AUTODISCOVER_HOST = "autodiscover.ssl.test.example"
POX_PATH = "/autodiscover/autodiscover.xml"
# The site's settings, read from its files (the HTTPS servers' are in their
# snippet): what the test waits for.
SITE = "\n".join(
    (DEPLOY / name).read_text(encoding="utf-8")
    for name in ("mail-autoconf.conf", "mail-autoconf-https.conf")
)


def site_seconds(directive: str) -> float:
    values = set(re.findall(rf"^\s*{directive} (\d+)s;", SITE, re.MULTILINE))
    assert len(values) == 1, f"{directive}: {values or 'not set'} (one value in every server)"
    return float(values.pop())


def site_limit() -> int:
    values = set(re.findall(r"^\s*limit_conn mail_autoconf_addr (\d+);", SITE, re.MULTILINE))
    assert len(values) == 1, values
    return int(values.pop())


HEADER_TIMEOUT = site_seconds("client_header_timeout")
BODY_TIMEOUT = site_seconds("client_body_timeout")
PER_ADDRESS = site_limit()
SLOW_HEADERS = 200  # half over plain HTTP, half over TLS
STALLED_BODIES = 20  # one client address each
OVER_THE_LIMIT = 5  # stalled bodies beyond the limit, from one more address
SLACK = 3.0  # what a loaded test machine may add to a timeout


def raise_file_limit(needed: int) -> None:
    """Enough file descriptors for this process and the nginx it starts (which inherits
    the limit): the test holds some 250 connections, nginx as many and their upstreams."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.skip(f"ulimit -n allows {hard} open files, the test needs {needed}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


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


def unread_by_peer(sock: socket.socket) -> int | None:
    """Bytes sent on ``sock`` that the process at its other end (on this machine) has not
    read: in flight (this end's tx_queue in /proc/net/tcp) or waiting in the other end's
    receive queue, accepted or not. None while the other end has no socket yet."""

    def hex_address(address: tuple[str, int]) -> str:
        return f"{socket.inet_aton(address[0])[::-1].hex().upper()}:{address[1]:04X}"

    mine, theirs = hex_address(sock.getsockname()), hex_address(sock.getpeername())
    queues: dict[tuple[str, str], tuple[int, int]] = {}
    for line in Path("/proc/net/tcp").read_text(encoding="ascii").splitlines()[1:]:
        fields = line.split()
        tx, rx = (int(n, 16) for n in fields[4].split(":"))
        queues[fields[1], fields[2]] = tx, rx
    if (theirs, mine) not in queues:
        return None
    return queues.get((mine, theirs), (0, 0))[0] + queues[theirs, mine][1]


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
        # Each sync worker is now reading one of the bodies: all that was sent is read.
        wait_for(
            lambda: all(unread_by_peer(sock) == 0 for sock in stalled),
            5,
            "the two workers read what came of the stalled bodies",
        )
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


# ---------------------------------------------------------------------------
# Through the nginx site


@dataclass
class Front:
    service: Started
    service_port: int
    nginx: Nginx
    tls: ssl.SSLContext


@pytest.fixture
def front(tmp_path: Path) -> Iterator[Front]:
    raise_file_limit(2048)
    service, port = start_service(CLIENT_DOMAINS_DIR, tmp_path, "--proxy-hops", "1")
    try:
        nginx = start_nginx(
            tmp_path / "nginx",
            port,
            CLIENT_DOMAINS_DIR,
            CLIENT_DOMAINS,
            default_names=UNLISTED_NAMES,
        )
    except BaseException:
        service.stop()
        raise
    try:
        yield Front(service, port, nginx, ssl.create_default_context(cafile=nginx.ca_file))
    finally:
        nginx.stop()
        service.stop()


@dataclass
class Probe:
    """GET PROBE_PATH from 127.0.0.1, on a new connection each time (alternately
    HTTPS and plain HTTP), every 50 ms until told to stop."""

    front: Front
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        https = urllib3.HTTPSConnectionPool(
            "127.0.0.1",
            self.front.nginx.https_port,
            server_hostname=AUTOCONFIG_HOST,
            assert_hostname=AUTOCONFIG_HOST,
            ssl_context=self.front.tls,
            retries=False,
            timeout=5,
        )
        http = urllib3.HTTPConnectionPool(
            "127.0.0.1", self.front.nginx.http_port, retries=False, timeout=5
        )
        headers = {"Host": AUTOCONFIG_HOST, "Connection": "close"}
        while not self.stop.is_set():
            pool = https if len(self.latencies) % 2 == 0 else http
            began = time.monotonic()
            try:
                answer = pool.request("GET", PROBE_PATH, headers=headers, redirect=False)
                if answer.status != 200:
                    self.failures.append(f"{answer.status}: {answer.data[:200]!r}")
            except urllib3.exceptions.HTTPError as exc:
                self.failures.append(repr(exc))
            self.latencies.append(time.monotonic() - began)
            self.stop.wait(0.05)


def slow_header(front: Front, source: str, tls: bool) -> socket.socket:
    """Half a request: the request line and part of a header, then nothing."""
    sock = connect(front.nginx.https_port if tls else front.nginx.http_port, source)
    if tls:
        sock = front.tls.wrap_socket(sock, server_hostname=AUTOCONFIG_HOST)
    sock.sendall(
        f"GET {PROBE_PATH} HTTP/1.1\r\nHost: {AUTOCONFIG_HOST}\r\nUser-Agent: slo".encode()
    )
    return sock


def stalled_body(front: Front, source: str) -> socket.socket:
    """A POX request over HTTPS with Content-Length 1000, of which 10 bytes are sent."""
    sock = front.tls.wrap_socket(
        connect(front.nginx.https_port, source), server_hostname=AUTODISCOVER_HOST
    )
    sock.sendall(
        f"POST {POX_PATH} HTTP/1.1\r\nHost: {AUTODISCOVER_HOST}\r\n".encode()
        + b"Content-Type: text/xml\r\nContent-Length: 1000\r\n\r\n<?xml vers"
    )
    return sock


@dataclass
class Held:
    """One connection of the attack, and what became of it."""

    sock: socket.socket
    kind: str
    sent: float
    ended: float | None = None
    answer: bytes = b""


def wait_for_ends(held: list[Held], deadline: float) -> None:
    """Read each connection until nginx answers or closes it, or the deadline passes."""
    with selectors.DefaultSelector() as selector:
        for entry in held:
            entry.sock.setblocking(False)
            selector.register(entry.sock, selectors.EVENT_READ, entry)
        while selector.get_map() and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=0.2):
                entry = key.data
                try:
                    data = entry.sock.recv(65536)
                except (ssl.SSLWantReadError, BlockingIOError):
                    continue  # part of a TLS record: wait for the rest
                except (OSError, ssl.SSLError):  # reset: reset_timedout_connection
                    data = b""
                entry.answer += data
                if not data or b"\r\n\r\n" in entry.answer:
                    entry.ended = time.monotonic()
                    selector.unregister(entry.sock)


def outcomes(held: list[Held]) -> str:
    """How nginx ended each kind of connection, and after how long, for the figures."""
    found: dict[tuple[str, str], list[float]] = {}
    for entry in held:
        status = status_of(entry.answer)
        what = f"HTTP {status}" if status else "closed"
        found.setdefault((entry.kind, what), []).append((entry.ended or 0) - entry.sent)
    return "; ".join(
        f"{kind}: {len(times)} {what} after {min(times):.1f} to {max(times):.1f} s"
        for (kind, what), times in sorted(found.items())
    )


def test_slow_clients_through_nginx_leave_the_service_answering(front: Front) -> None:
    began = time.monotonic()
    probe = Probe(front)
    prober = threading.Thread(target=probe.run, name="probe")
    prober.start()
    held: list[Held] = []
    try:
        wait_for(lambda: len(probe.latencies) >= 3, 10, "a few answers before the attack")
        # Each slow connection from an address of its own (127.0.0.2 and on), as a
        # crowd of clients would come: no per-address limit can help against them.
        addresses = (f"127.0.{n // 250}.{n % 250 + 2}" for n in range(10_000))
        for n in range(SLOW_HEADERS):
            tls = n % 2 == 1
            sock = slow_header(front, next(addresses), tls)
            held.append(Held(sock, "header over TLS" if tls else "header", time.monotonic()))
        for _ in range(STALLED_BODIES):
            held.append(Held(stalled_body(front, next(addresses)), "body", time.monotonic()))
        # One address beyond its limit: the first PER_ADDRESS bodies are held, the
        # rest refused at once.
        crowded = next(addresses)
        for _ in range(PER_ADDRESS + OVER_THE_LIMIT):
            held.append(Held(stalled_body(front, crowded), "crowded", time.monotonic()))
        attacked = time.monotonic() - began
        wait_for_ends(held, time.monotonic() + max(HEADER_TIMEOUT, BODY_TIMEOUT) + SLACK)
        answered = len(probe.latencies)  # and the probe goes on after nginx has let go
        wait_for(lambda: len(probe.latencies) >= answered + 3, 10, "answers after the attack")
    finally:
        probe.stop.set()
        prober.join(timeout=10)
        for entry in held:
            entry.sock.close()
    took = time.monotonic() - began

    # The probe: answered all along, nearly always within a second.
    latencies = sorted(probe.latencies)
    within = sum(1 for t in latencies if t <= 1.0)
    figures = (
        f"\nthrough nginx: {len(held)} slow connections opened in {attacked:.1f} s;"
        f" probe answers within 1 s: {within} of {len(latencies)},"
        f" worst {latencies[-1]:.3f} s, median {latencies[len(latencies) // 2]:.3f} s;"
        f" test {took:.1f} s; nginx's ends: {outcomes(held)}"
    )
    print(figures)
    assert probe.failures == [], probe.failures[:5]
    assert len(latencies) >= 50, figures
    assert within >= 0.99 * len(latencies), figures

    # nginx let go of every slow connection after its timeout, and answered the
    # stalled bodies itself; one address got PER_ADDRESS at a time, the rest 429.
    def ends(kind: str) -> list[Held]:
        return [entry for entry in held if entry.kind == kind]

    for kind, timeout in [
        ("header", HEADER_TIMEOUT),
        ("header over TLS", HEADER_TIMEOUT),
        ("body", BODY_TIMEOUT),
    ]:
        for entry in ends(kind):
            assert entry.ended is not None, f"nginx never closed a slow {kind} connection"
            assert timeout - 1 <= entry.ended - entry.sent <= timeout + SLACK, (kind, entry)
            assert status_of(entry.answer) in (None, 408), (kind, entry.answer[:200])
    refused = [e for e in ends("crowded") if status_of(e.answer) == 429]
    assert len(refused) == OVER_THE_LIMIT, [e.answer[:40] for e in ends("crowded")]
    assert all(e.ended is not None and e.ended - e.sent < 1.0 for e in refused)
    kept = [e for e in ends("crowded") if e not in refused]
    assert all(e.ended is not None and e.ended - e.sent >= BODY_TIMEOUT - 1 for e in kept)

    # None of it reached the service: it saw the probe, and no POST at all.
    log = front.service.log_text()
    assert "POST" not in log and "Traceback" not in log, log[-2000:]
    assert log.count(f'"GET {PROBE_PATH.split("@")[0]}') == 0  # redacted, as always
    assert log.count('"GET /mail/config-v1.1.xml?emailaddress=***@ssl.test.example') >= len(
        latencies
    )
    assert took <= 30, figures
