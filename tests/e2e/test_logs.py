"""No address, password or Authorization value in any log line of any process we
ship: the real `mail-autoconf serve` (its access log and gunicorn's error log)
and the real nginx site of deploy/nginx/ (its access and error logs)."""

from __future__ import annotations

import base64
import os
import socket
import stat
import time
import uuid
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import Front
from tests.e2e.processes import Started, start_service
from tests.e2e.test_nginx import https
from tests.helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "tests" / "data" / "examples"  # a copy of domains/, which an admin may change
# Local parts no log line may show, in any spelling: each sent as the cases below.
LOCAL_PARTS = ["ünique.person", "john=smith", "alice smith", "bob+tag", '"a b@c"', "x\u00a0y"]


def send_raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def wait_for_line(started: Started, marker: str) -> str:
    deadline = time.monotonic() + 10
    while marker not in started.log_text():
        assert time.monotonic() < deadline, "the log never showed the last request"
        time.sleep(0.1)
    return started.log_text()


def leaks(log: str, secrets: list[str]) -> dict[str, list[str]]:
    found = {}
    for secret in secrets:
        spellings = {secret, secret.encode().decode("latin-1"), secret.replace(" ", "+")}
        pieces = {p for s in spellings for p in s.replace("@", " ").split() if len(p) > 2}
        lines = [line for line in log.splitlines() if any(p in line for p in pieces)]
        if lines:
            found[secret] = lines[:3]
    return found


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> tuple[Started, int]:
    base = tmp_path_factory.mktemp("logs")
    started, port = start_service(EXAMPLES, base, "--workers", "1")
    yield started, port
    started.stop()


def test_gunicorns_own_warnings_show_no_local_part(service: tuple[Started, int]) -> None:
    started, port = service
    for local in LOCAL_PARTS:
        address = f"{local}@example.com".encode()
        # A request line gunicorn refuses (raw bytes no HTTP client sends), a header
        # gunicorn refuses, and a request line over its 4094-byte limit.
        send_raw(port, b"GET /mail/config-v1.1.xml?emailaddress=" + address + b" HTTP/1.1\r\n\r\n")
        send_raw(
            port,
            b"GET /mail/config-v1.1.xml HTTP/1.1\r\nHost: x\r\nBad Header " + address + b"\r\n\r\n",
        )
        send_raw(
            port, b"GET /?emailaddress=" + address + b"&p=" + b"x" * 5000 + b" HTTP/1.1\r\n\r\n"
        )
    marker = f"/end-{uuid.uuid4().hex}"
    requests.get(f"http://127.0.0.1:{port}{marker}", timeout=5)
    log = wait_for_line(started, marker)
    assert "Invalid HTTP request line" in log or "Invalid request" in log  # they were logged
    assert leaks(log, LOCAL_PARTS) == {}, leaks(log, LOCAL_PARTS)
    assert "Traceback" not in log


def test_the_access_log_hides_the_whole_local_part(service: tuple[Started, int]) -> None:
    started, port = service
    spellings = []
    for local in LOCAL_PARTS:
        address = f"{local}@example.com"
        encoded = requests.utils.quote(address, safe="")
        spellings += [
            f"/mail/config-v1.1.xml?emailaddress={encoded}",
            f"/mail/config-v1.1.xml?emailaddress={encoded.replace('%40', '%2540')}",
            f"/mobileconfig?x=1&emailaddress={encoded.replace('%20', '+')}",
            f"/autodiscover/autodiscover.json/v1.0/{encoded}?Protocol=AutodiscoverV1",
        ]
    for target in spellings:
        requests.get(f"http://127.0.0.1:{port}{target}", timeout=5)
    marker = f"/end-{uuid.uuid4().hex}"
    requests.get(f"http://127.0.0.1:{port}{marker}", timeout=5)
    log = wait_for_line(started, marker)
    assert log.count("***@example.com") >= len(spellings) - len(LOCAL_PARTS)
    assert leaks(log, LOCAL_PARTS) == {}, leaks(log, LOCAL_PARTS)


def hashed(tmp_path: Path, name: str, **env: str) -> str:
    workdir = tmp_path / name
    workdir.mkdir()
    env = {"AUTOCONF_LOG_ADDRESSES": "hash", "AUTOCONF_STATE": str(workdir / "state"), **env}
    started, port = start_service(EXAMPLES, workdir, "--workers", "1", env=env)
    try:
        requests.get(
            f"http://127.0.0.1:{port}/mail/config-v1.1.xml?emailaddress=carol@example.com",
            timeout=5,
        )
        marker = f"/end-{uuid.uuid4().hex}"
        requests.get(f"http://127.0.0.1:{port}{marker}", timeout=5)
        log = wait_for_line(started, marker)
    finally:
        started.stop()
    (line,) = [line for line in log.splitlines() if "emailaddress=" in line]
    assert "carol" not in line
    return line.split("emailaddress=")[1].split("@")[0]


def test_hash_is_an_hmac_with_a_key_of_the_installation(tmp_path: Path) -> None:
    one = hashed(tmp_path, "a", AUTOCONF_LOG_KEY="k" * 40)
    assert hashed(tmp_path, "b", AUTOCONF_LOG_KEY="k" * 40) == one  # same key, same hash
    assert hashed(tmp_path, "c", AUTOCONF_LOG_KEY="z" * 40) != one
    generated = hashed(tmp_path, "d")  # no key set: one is made into the state folder
    key = tmp_path / "d" / "state" / "log-key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert generated != one and len(generated) == 12


def test_the_nginx_sites_logs_show_no_address_and_no_credentials(front: Front) -> None:
    address = "site.log.person@ssl.test.example"
    token = base64.b64encode(f"{address}:hunter2-secret".encode()).decode()
    auth = {"Authorization": f"Basic {token}"}
    host = "autoconfig.ssl.test.example"
    https(front, host, "GET", f"/mail/config-v1.1.xml?emailaddress={address}", headers=auth)
    https(front, host, "GET", f"/autodiscover/autodiscover.json/v1.0/{address}", headers=auth)
    https(front, host, "GET", f"/mail/config-v1.1.xml?emailaddress={address}%00\x01", headers=auth)
    https(front, host, "POST", "/autodiscover/autodiscover.xml", body=b"x" * 70_000, headers=auth)
    workdir = Path(front.nginx.ca_file).parent
    access = workdir / "site-access.log"
    deadline = time.monotonic() + 5
    while "autodiscover.json" not in (access.read_text() if access.exists() else ""):
        assert time.monotonic() < deadline, "nginx wrote no access line"
        time.sleep(0.1)
    texts = {p.name: p.read_text() for p in (access, workdir / "site-error.log") if p.exists()}
    for name, text in texts.items():
        for secret in ("site.log.person", "hunter2", token):
            assert secret not in text, (name, secret, text[-2000:])
    assert "***@ssl.test.example" in texts["site-access.log"]
    assert "emailaddress" not in texts["site-access.log"]  # no query string at all


def test_the_key_file_is_kept_across_restarts(tmp_path: Path) -> None:
    from autoconf.logkey import log_key
    from autoconf.settings import Settings

    settings = Settings(domains=tmp_path / "domains", state=tmp_path / "state")
    assert log_key(settings) == log_key(settings)
    assert os.stat(tmp_path / "state" / "log-key").st_mode & 0o077 == 0


def test_a_worker_timeout_logs_no_address(tmp_path: Path) -> None:
    """gunicorn kills a worker stuck past its timeout and logs it (and the aborted
    request): with the service's own gunicorn settings and a 2 s timeout."""
    import sys

    from tests.e2e.processes import free_port, start, wait_until

    port = free_port()
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOCONF_")}
    env |= {"AUTOCONF_DOMAINS": str(EXAMPLES), "AUTOCONF_STATE": str(tmp_path / "state")}
    command = [
        gunicorn,
        "-c",
        str(ROOT / "deploy" / "gunicorn.conf.py"),
        "--bind",
        f"127.0.0.1:{port}",
    ]
    started = start(
        [*command, "--workers", "1", "--timeout", "2"], tmp_path / "log", cwd=tmp_path, env=env
    )
    try:
        wait_until(lambda: _answers(port), started, "gunicorn")
        local = "stuck.worker.person"
        with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
            sock.sendall(
                f"POST /autodiscover/autodiscover.xml?emailaddress={local}@example.com HTTP/1.1\r\n"
                "Host: x\r\nContent-Length: 1000\r\n\r\n<a".encode()
            )
            deadline = time.monotonic() + 15
            while "WORKER TIMEOUT" not in started.log_text():
                assert time.monotonic() < deadline, started.log_text()[-2000:]
                time.sleep(0.2)
        # The replacement boots once the stuck worker has written its last line and gone.
        wait_for(
            lambda: started.log_text().count("Booting worker with pid") >= 2,
            15,
            "the timed-out worker's replacement",
        )
    finally:
        started.stop()
    log = started.log_text()
    assert local not in log and "stuck.worker" not in log, log[-3000:]
    assert "Traceback" not in log


def _answers(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except requests.RequestException:
        return False
