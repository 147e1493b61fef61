"""`mail-autoconf dns --check` against a real DNS server: dnsmasq on 127.0.0.1.

The zone has one domain published right (an SRV weight of its own, one name a
CNAME of the public host, the other an address record with the host's
addresses), one with records missing and wrong, and nothing at all for a
third; the real command asks dnsmasq through --resolver (or AUTOCONF_RESOLVER).
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from autoconf.exits import Exit
from autoconf.render import pacc
from tests.e2e.dnsmasq import Dnsmasq, start_dnsmasq
from tests.e2e.processes import EXECUTABLE
from tests.helpers import provider_from_yaml

HOST = "autoconf.check.test"
FILE = """\
provider: {id: check.test, name: Check}
domains: [right.test, mixed.test, bare.test]
incoming:
  - {type: imap, host: imap.check.test, security: ssl}
  - {type: pop3, host: pop.check.test, security: ssl}
outgoing:
  - {type: smtp, host: smtp.check.test, security: ssl}
  - {type: smtp, host: smtp.check.test, security: starttls}
calendar: {url: "https://dav.check.test/cal/%EMAILADDRESS%/"}
addressbook: {url: "https://dav.check.test:8443/%EMAILDOMAIN%/%EMAILLOCALPART%/"}
"""


def pacc_digest(domain: str) -> str:
    """The TXT data `dns` asks for: the digest of the PACC document served for ``domain``."""
    body = pacc.render(provider_from_yaml(FILE), domain)
    assert body is not None
    return pacc.digest(body)


ZONE = [
    f"--host-record={HOST},127.0.0.53,::53",
    # PACC's digest of right.test's document, and a stale one at mixed.test.
    f"--txt-record=_ua-auto-config.right.test,{pacc_digest('right.test')}",
    f"--cname=ua-auto-config.right.test,{HOST}",
    "--txt-record=_ua-auto-config.mixed.test,v=UAAC1; a=sha256; d=c3RhbGU=",
    "--host-record=other.check.test,127.0.0.99",
    # right.test: all there (a weight of 5 changes nothing a client does).
    "--srv-host=_imaps._tcp.right.test,imap.check.test,993,0,5",
    "--srv-host=_pop3s._tcp.right.test,pop.check.test,995,10,0",
    "--srv-host=_submissions._tcp.right.test,smtp.check.test,465,0,0",
    "--srv-host=_submission._tcp.right.test,smtp.check.test,587,10,0",
    f"--srv-host=_autodiscover._tcp.right.test,{HOST},443,0,0",
    f"--cname=autoconfig.right.test,{HOST}",
    "--host-record=autodiscover.right.test,127.0.0.53,::53",
    "--mx-host=right.test,mx.check.test,10",
    "--txt-record=right.test,v=spf1 mx -all",
    # RFC 6764: the path is the first string that starts with path= (Thunderbird's reading).
    "--srv-host=_caldavs._tcp.right.test,dav.check.test,443,0,0",
    "--txt-record=_caldavs._tcp.right.test,path=/cal/",
    "--srv-host=_carddavs._tcp.right.test,dav.check.test,8443,0,0",
    "--txt-record=_carddavs._tcp.right.test,txtvers=1,path=/right.test/",
    # mixed.test: one right, the rest missing or wrong.
    "--srv-host=_imaps._tcp.mixed.test,imap.check.test,993,0,0",
    "--srv-host=_submissions._tcp.mixed.test,smtp.check.test,25,0,0",
    "--srv-host=_submission._tcp.mixed.test,mail.elsewhere.test,587,10,0",
    "--cname=autoconfig.mixed.test,other.check.test",
    "--srv-host=_caldavs._tcp.mixed.test,dav.check.test,443,0,0",
    "--txt-record=_caldavs._tcp.mixed.test,path=/",
]


@pytest.fixture(scope="module")
def dnsmasq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dnsmasq]:
    server = start_dnsmasq(tmp_path_factory.mktemp("dnsmasq"), ZONE)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    domains = tmp_path_factory.mktemp("check") / "domains"
    domains.mkdir()
    (domains / "check.yaml").write_text(FILE, encoding="utf-8")
    (domains / "rest.yaml").write_text(
        "domains: ['*']\nincoming: [{type: imap, host: imap.check.test, security: ssl}]\n"
        "outgoing: [{type: smtp, host: smtp.check.test, security: ssl}]\n",
        encoding="utf-8",
    )
    return domains


def dns(
    folder: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The installed command, seeing only ``env``'s AUTOCONF_* settings."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AUTOCONF_")}
    environment.update(env or {})
    command = [str(EXECUTABLE), "dns", *args, "--check", "--domains", str(folder)]
    return subprocess.run(
        command, capture_output=True, text=True, env=environment, timeout=60, check=False
    )


def verdicts(output: str) -> dict[str, str]:
    """Record name (with " TXT" for a TXT record, beside the SRV of its name) -> verdict."""
    found = {}
    for line in output.splitlines():
        if line and not line.startswith(";") and " records checked: " not in line:
            verdict, name, rdtype = line.split()[:3]
            found[name + (" TXT" if rdtype.startswith("TXT") else "")] = verdict
    return found


def test_a_domain_published_right(dnsmasq: Dnsmasq, folder: Path) -> None:
    done = dns(folder, "right.test", "--public-host", HOST, "--resolver", dnsmasq.nameserver)
    assert done.returncode == Exit.OK, done.stdout + done.stderr
    assert verdicts(done.stdout) == {
        "_imaps._tcp.right.test.": "present",
        "_pop3s._tcp.right.test.": "present",
        "_submissions._tcp.right.test.": "present",
        "_submission._tcp.right.test.": "present",
        "_caldavs._tcp.right.test.": "present",
        "_caldavs._tcp.right.test. TXT": "present",
        "_carddavs._tcp.right.test.": "present",
        "_carddavs._tcp.right.test. TXT": "present",
        "_autodiscover._tcp.right.test.": "present",
        "autoconfig.right.test.": "present",
        "autodiscover.right.test.": "present",
        "_ua-auto-config.right.test. TXT": "present",
        "ua-auto-config.right.test.": "present",
        "right.test.": "info",
    }
    lines = done.stdout.splitlines()
    assert "present    _imaps._tcp.right.test. SRV 0 5 993 imap.check.test." in lines
    assert f"present    autoconfig.right.test. CNAME {HOST}." in lines
    assert (
        "present    autodiscover.right.test. A 127.0.0.53, AAAA ::53 "
        f"(the addresses of {HOST}.)" in lines
    )
    assert "info       right.test. MX 10 mx.check.test." in lines
    assert f'present    _ua-auto-config.right.test. TXT "{pacc_digest("right.test")}"' in lines
    assert 'present    _carddavs._tcp.right.test. TXT "txtvers=1" "path=/right.test/"' in lines
    assert lines[-1] == "13 records checked: 13 present, 0 missing, 0 different"
    assert done.stderr == ""


def test_missing_and_wrong_records(dnsmasq: Dnsmasq, folder: Path) -> None:
    env = {"AUTOCONF_RESOLVER": dnsmasq.nameserver, "AUTOCONF_PUBLIC_HOST": HOST}
    done = dns(folder, "mixed.test", env=env)
    assert done.returncode == Exit.INVALID, done.stdout + done.stderr
    assert verdicts(done.stdout) == {
        "_imaps._tcp.mixed.test.": "present",
        "_pop3s._tcp.mixed.test.": "missing",
        "_submissions._tcp.mixed.test.": "different",
        "_submission._tcp.mixed.test.": "different",
        "_caldavs._tcp.mixed.test.": "present",
        "_caldavs._tcp.mixed.test. TXT": "different",
        "_carddavs._tcp.mixed.test.": "missing",
        "_carddavs._tcp.mixed.test. TXT": "missing",
        "_autodiscover._tcp.mixed.test.": "missing",
        "autoconfig.mixed.test.": "different",
        "autodiscover.mixed.test.": "missing",
        "_ua-auto-config.mixed.test. TXT": "different",
        "ua-auto-config.mixed.test.": "missing",
        "mixed.test.": "info",
    }
    lines = done.stdout.splitlines()
    assert (
        "different  _submissions._tcp.mixed.test. SRV: want 0 0 465 smtp.check.test.; "
        "DNS has 0 0 25 smtp.check.test." in lines
    )
    assert (
        "missing    _pop3s._tcp.mixed.test. SRV: want 10 0 995 pop.check.test.; DNS has none"
        in lines
    )
    assert (
        f"different  autoconfig.mixed.test. CNAME: want {HOST}. (or the same addresses); "
        f"DNS has CNAME other.check.test., A 127.0.0.99 ({HOST}. has A 127.0.0.53, AAAA ::53)"
        in lines
    )
    assert 'different  _caldavs._tcp.mixed.test. TXT: want "path=/cal/"; DNS has "path=/"' in lines
    assert (
        'missing    _carddavs._tcp.mixed.test. TXT: want "path=/mixed.test/"; DNS has none' in lines
    )
    assert "info       mixed.test. MX none" in lines
    assert (
        f'different  _ua-auto-config.mixed.test. TXT: want "{pacc_digest("mixed.test")}"; '
        'DNS has "v=UAAC1; a=sha256; d=c3RhbGU="' in lines
    )
    assert lines[-1] == "13 records checked: 2 present, 6 missing, 5 different"


def test_the_whole_folder_by_provider(dnsmasq: Dnsmasq, folder: Path) -> None:
    done = dns(folder, "--by-provider", "--public-host", HOST, "--resolver", dnsmasq.nameserver)
    assert done.returncode == Exit.INVALID
    lines = done.stdout.splitlines()
    assert lines[0] == f"; ==== {folder / 'check.yaml'}: provider check.test, 3 domains"
    assert [line.split()[1] for line in lines if line.startswith("info")] == [
        "bare.test.",
        "mixed.test.",
        "right.test.",
    ]
    assert verdicts(done.stdout)["autoconfig.bare.test."] == "missing"
    assert lines[-3] == f"; ==== {folder / 'rest.yaml'}: provider catch-all, 0 domains"
    assert "the catch-all: its domains cannot be listed" in lines[-2]
    assert lines[-1] == "3 domains, 39 records checked: 15 present, 19 missing, 5 different"


def test_dns_that_does_not_answer(folder: Path) -> None:
    """A server that takes the question and never answers: its own state, exit 3."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        resolver = f"127.0.0.1:{silent.getsockname()[1]}"
        done = dns(folder, "--public-host", HOST, "--resolver", resolver, "--timeout", "0.3")
    assert done.returncode == Exit.NO_ANSWER, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert "failed     _imaps._tcp.bare.test. SRV: no answer within 0.3 s" in lines
    assert "present" not in verdicts(done.stdout).values()
    assert f"DNS ({resolver}) answered no lookup for bare.test: stopped there" in done.stderr
    assert "no answer for 13 records within 0.3 s" in done.stderr
    assert "Traceback" not in done.stderr
