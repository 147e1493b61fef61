"""Certificates on demand: Caddy (deploy/caddy/Caddyfile) asks the service's
/tls/allowed, gets each certificate from an ACME CA the first time a name is
asked for, and Thunderbird 153 sets itself up over it.

The CA is Debian's Pebble with validation switched off (PEBBLE_VA_ALWAYS_VALID):
no challenge must reach a public address, everything else is the real ACME
flow. Thunderbird trusts Pebble's root, made at Pebble's start, and nothing
else new; no certificate exists for any name before the test.
"""

from __future__ import annotations

import json
import shutil
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.e2e.caddy import Caddy, Pebble, start_caddy, start_pebble
from tests.e2e.conftest import CLIENT_DOMAINS_DIR
from tests.e2e.dnsmasq import Dnsmasq, start_dnsmasq
from tests.e2e.processes import Started, start_service
from tests.e2e.test_thunderbird import assert_same, discovered, expected, servers
from tests.e2e.thunderbird import Thunderbird, start_thunderbird
from tests.helpers import wait_for

PUBLIC_HOST = "autoconf.hoster.test"
# Two customer domains of tests/data/thunderbird/, each with its file.
CUSTOMERS = [
    ("a-ssl.yaml", "alice@ssl.test.example"),
    ("b-starttls.yaml", "bob@starttls.test.example"),
]
# Domains only the catch-all (g-catch-all.yaml, hosts mail.%EMAILDOMAIN%) serves:
# one whose MX is the hoster's (the public host's registered domain), one elsewhere.
ZONE = [
    "--mx-host=moved-in.example,mx1.hoster.test,10",
    "--mx-host=stranger.example,mx.elsewhere.example,10",
]


@dataclass
class OnDemand:
    pebble: Pebble
    service: Started
    service_port: int
    caddy: Caddy
    thunderbird: Thunderbird


@pytest.fixture(scope="module")
def on_demand(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OnDemand]:
    base = tmp_path_factory.mktemp("caddy")
    folder = base / "domains"
    folder.mkdir()
    for file in [*(file for file, _ in CUSTOMERS), "g-catch-all.yaml"]:
        shutil.copy(CLIENT_DOMAINS_DIR / file, folder / file)
    stack: list[Started | Caddy | Pebble | Thunderbird | Dnsmasq] = []
    try:
        dns = start_dnsmasq(base / "dnsmasq", ZONE)
        stack.append(dns)
        pebble = start_pebble(base / "pebble")
        stack.append(pebble)
        service, port = start_service(
            folder,
            base,
            "--proxy-hops",
            "1",
            "--public-host",
            PUBLIC_HOST,
            env={"AUTOCONF_RESOLVER": dns.nameserver},
        )
        stack.append(service)
        caddy = start_caddy(base / "caddy", port, pebble, PUBLIC_HOST)
        stack.append(caddy)
        thunderbird = start_thunderbird(
            base / "thunderbird", pebble.root_file, caddy.http_port, caddy.https_port
        )
        stack.append(thunderbird)
        yield OnDemand(pebble, service, port, caddy, thunderbird)
    finally:
        for part in reversed(stack):
            part.stop()


def handshake(on_demand: OnDemand, name: str) -> ssl.SSLSocket:
    """A TLS connection to Caddy for ``name``, trusting Pebble's root only."""
    context = ssl.create_default_context(cafile=str(on_demand.pebble.root_file))
    sock = socket.create_connection(("127.0.0.1", on_demand.caddy.https_port), timeout=30)
    try:
        return context.wrap_socket(sock, server_hostname=name)
    except BaseException:
        sock.close()
        raise


def get_over_tls(on_demand: OnDemand, name: str, path: str) -> tuple[str, bytes]:
    with handshake(on_demand, name) as tls:
        tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := tls.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return head.decode("latin-1").split("\r\n")[0], body


@pytest.mark.parametrize(("file", "email"), CUSTOMERS)
def test_thunderbird_sets_up_over_a_certificate_made_on_demand(
    on_demand: OnDemand, file: str, email: str
) -> None:
    config = discovered(on_demand.thunderbird, email)
    # The first lookup in Thunderbird's order: https://autoconfig.DOMAIN/.
    assert (config["source"], config["subSource"]) == ("xml", "xml-from-isp-https")
    want = expected(file, email)
    assert_same(servers(config, "incoming"), want["incoming"])
    assert_same(servers(config, "outgoing"), want["outgoing"])


def test_the_certificate_names_the_customer_name(on_demand: OnDemand) -> None:
    with handshake(on_demand, "autodiscover.ssl.test.example") as tls:
        cert = tls.getpeercert()
    assert cert is not None
    alt_names: tuple[tuple[str, str], ...] = cert["subjectAltName"]  # type: ignore[assignment]
    names = [value for kind, value in alt_names if kind == "DNS"]
    assert names == ["autodiscover.ssl.test.example"]


def test_the_public_host_gets_one_and_serves_the_page(on_demand: OnDemand) -> None:
    status, body = get_over_tls(on_demand, PUBLIC_HOST, "/")
    assert status == "HTTP/1.1 200 OK"
    assert b"<form" in body


@pytest.mark.parametrize(
    "name", ["autoconfig.nowhere.example", "www.ssl.test.example", "ssl.test.example"]
)
def test_a_name_not_served_gets_no_certificate(on_demand: OnDemand, name: str) -> None:
    with pytest.raises(ssl.SSLError):
        handshake(on_demand, name).close()
    assert wait_for(
        lambda: (
            name in on_demand.caddy.started.log_text()
            and "not allowed" in on_demand.caddy.started.log_text()
        ),
        10,
        "Caddy's log of the refusal",
    )


def test_a_catch_all_domain_gets_one_once_its_mx_is_the_hosters(on_demand: OnDemand) -> None:
    """The catch-all serves any domain; a certificate only where real DNS (dnsmasq,
    asked through AUTOCONF_RESOLVER) shows the domain's mail at the hoster."""
    with handshake(on_demand, "autoconfig.moved-in.example") as tls:
        assert tls.getpeercert() is not None
    with pytest.raises(ssl.SSLError):
        handshake(on_demand, "autoconfig.stranger.example").close()
    log = on_demand.service.log_text()
    assert "tls: autoconfig.moved-in.example allowed: the MX of moved-in.example is" in log
    assert "tls: autoconfig.stranger.example refused:" in log


def test_one_certificate_a_name_asked_for(on_demand: OnDemand) -> None:
    """Every name the service allowed got one certificate, and no other name any."""
    # Names asked for again (the tests above, a second handshake) need none.
    handshake(on_demand, "autoconfig.ssl.test.example").close()
    handshake(on_demand, "autoconfig.ssl.test.example").close()
    log = on_demand.caddy.started.log_text()
    obtained = {name for name in _names_in(log, "certificate obtained successfully")}
    assert "autoconfig.ssl.test.example" in obtained
    assert "autoconfig.starttls.test.example" in obtained
    assert PUBLIC_HOST in obtained
    assert not obtained & {
        "autoconfig.nowhere.example",
        "www.ssl.test.example",
        "autoconfig.stranger.example",
    }
    assert on_demand.pebble.issued() == len(obtained)
    # One ACME account: registered with the public host's certificate at the start,
    # before the names asked for at once (deploy/caddy/Caddyfile says why).
    accounts = on_demand.pebble.started.log_text().count("accounts in memory")
    assert accounts == 1


def test_the_machine_only_paths_are_closed_through_caddy(on_demand: OnDemand) -> None:
    for path in ("/metrics", "/tls/allowed?domain=autoconfig.ssl.test.example"):
        status, _ = get_over_tls(on_demand, "autoconfig.ssl.test.example", path)
        assert status == "HTTP/1.1 404 Not Found"
    # On the machine itself the service answers.
    direct = requests.get(
        f"http://127.0.0.1:{on_demand.service_port}/tls/allowed",
        params={"domain": "autoconfig.ssl.test.example"},
        timeout=5,
    )
    assert direct.status_code == 200


def test_plain_http_answers_autoconfig_and_redirects_the_rest(on_demand: OnDemand) -> None:
    base = f"http://127.0.0.1:{on_demand.caddy.http_port}"
    host = {"Host": "autoconfig.ssl.test.example"}
    found = requests.get(
        f"{base}/mail/config-v1.1.xml",
        params={"emailaddress": "alice@ssl.test.example"},
        headers=host,
        timeout=5,
    )
    assert found.status_code == 200
    assert b"imap.ssl.test.example" in found.content
    moved = requests.get(
        f"{base}/Autodiscover/Autodiscover.xml", headers=host, allow_redirects=False, timeout=5
    )
    assert moved.status_code == 302
    assert moved.headers["Location"] == (
        "https://autoconfig.ssl.test.example/Autodiscover/Autodiscover.xml"
    )


def test_no_password_passes_caddy(on_demand: OnDemand) -> None:
    on_demand.thunderbird.exchange("alice@ssl.test.example")
    log = on_demand.service.log_text()
    assert "hunter2" not in log


def _names_in(log: str, message: str) -> list[str]:
    """The identifiers of Caddy's JSON log lines with ``message``."""
    names = []
    for line in log.splitlines():
        if message in line and line.startswith("{"):
            entry = json.loads(line)
            names.append(str(entry.get("identifier", "")))
    return names


def test_the_caddyfile_is_the_deployed_one() -> None:
    deployed = Path(__file__).resolve().parents[2] / "deploy" / "caddy" / "Caddyfile"
    text = deployed.read_text(encoding="utf-8")
    assert "on_demand" in text and "/tls/allowed" in text
