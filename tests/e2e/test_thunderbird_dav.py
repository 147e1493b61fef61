"""Calendars and contacts found the way Thunderbird 153 looks for them, from the
mail address alone (docs/clients.md#calendars-and-contacts-observed).

After an account is set up, the account hub looks for CardDAV address books
(CardDAVUtils.detectAddressBooks) and CalDAV calendars (the calendar providers'
detection) at ``https://<the address's domain>``: the ``_carddavs._tcp`` and
``_caldavs._tcp`` SRV records with their TXT ``path=`` (RFC 6764), else
``https://D/.well-known/carddav`` and ``/.well-known/caldav``. Here a real
Radicale holds each user's calendar and address book, on its own TLS port, and:

- ``wellknown.test`` has no SRV records: its bare domain is served by nginx and
  the service, whose ``.well-known`` redirect (307) sends Thunderbird to the
  domain file's calendar and addressbook base;
- ``srv.test`` has what ``mail-autoconf dns srv.test`` prints (dnsmasq serves
  exactly those lines), and nothing answers at https://srv.test/ (no
  certificate names it): the SRV and TXT records alone lead there.

As in test_mx_path.py: one network namespace, dnsmasq on its 127.0.0.1:53, and
Thunderbird in a mount namespace whose /etc/resolv.conf names it, since
Thunderbird's SRV, TXT and MX lookups go through the C library's resolver
(DNS.sys.mjs), not through network.dns.forceResolve.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import pytest

from tests.e2e.dnsmasq import Dnsmasq, start_dnsmasq
from tests.e2e.namespace import NetworkNamespace, with_resolv_conf, write_resolv_conf
from tests.e2e.nginx import Nginx, start_nginx
from tests.e2e.processes import EXECUTABLE, Started, start_service
from tests.e2e.radicale import (
    CALENDAR,
    CONTACTS,
    Radicale,
    calendar_name,
    contacts_name,
    start_radicale,
)
from tests.e2e.thunderbird import PASSWORD, Thunderbird, start_thunderbird
from tests.helpers import wait_for

WELL_KNOWN = "wellknown.test"
SRV = "srv.test"
USERS = {f"anna@{WELL_KNOWN}": PASSWORD, f"ben@{SRV}": PASSWORD}
# A domain file as a Radicale user would write it: the collections live under
# /USER/, so the URL names the user; its base is Radicale's root.
FILE = """\
domains: [{domain}]
incoming: [{{type: imap, host: imap.hosting.test, security: ssl}}]
outgoing: [{{type: smtp, host: smtp.hosting.test, security: ssl}}]
calendar: {{url: "https://dav.{domain}:{port}/%EMAILADDRESS%/{calendar}/"}}
addressbook: {{url: "https://dav.{domain}:{port}/%EMAILADDRESS%/{contacts}/"}}
"""
# Thunderbird's CardDAV and calendar logs (and the account set-up's) to its
# standard output, read from thunderbird.log.
PREFS = {
    "carddav.setup.loglevel": "Debug",
    "calendar.loglevel": "Debug",
    "devtools.console.stdout.chrome": True,
}
# Opaque Response Blocking: on in Thunderbird 153, and what stops its CardDAV and
# CalDAV detection at a redirect to another origin (docs/clients.md).
ORB = "browser.opaqueResponseBlocking"
LOG_WAIT = 10.0


@dataclass
class World:
    radicale: Radicale
    dnsmasq: Dnsmasq
    service: Started
    nginx: Nginx
    thunderbird: Thunderbird

    def hosts_log(self) -> str:
        return self.nginx.hosts_log()


def dnsmasq_options(zone_lines: str) -> list[str]:
    """The RFC 6764 lines of `mail-autoconf dns`, as dnsmasq's record options."""
    options = []
    for line in zone_lines.splitlines():
        fields = line.split(maxsplit=4)
        if line.startswith(";") or len(fields) < 5 or not fields[0].startswith("_c"):
            continue
        name, rdtype, data = fields[0].rstrip("."), fields[3], fields[4]
        if rdtype == "SRV":
            priority, weight, port, target = data.split()
            options.append(f"--srv-host={name},{target.rstrip('.')},{port},{priority},{weight}")
        elif rdtype == "TXT":
            options.append(f"--txt-record={name},{data.strip(chr(34))}")
    return options


def printed_records(folder: Path, domain: str) -> str:
    done = subprocess.run(
        [str(EXECUTABLE), "dns", domain, "--domains", str(folder)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("dav")
    resolv_conf = write_resolv_conf(base / "resolv.conf", "127.0.0.1")
    namespace = NetworkNamespace.create()
    try:
        with ExitStack() as stack:
            with namespace.inside():
                hosts = [f"dav.{WELL_KNOWN}", f"dav.{SRV}"]
                radicale = start_radicale(base / "radicale", USERS, hosts)
                stack.callback(radicale.stop)
                folder = base / "domains"
                folder.mkdir()
                for domain in (WELL_KNOWN, SRV):
                    (folder / f"{domain}.yaml").write_text(
                        FILE.format(
                            domain=domain, port=radicale.port, calendar=CALENDAR, contacts=CONTACTS
                        ),
                        encoding="utf-8",
                    )
                records = dnsmasq_options(printed_records(folder, SRV))
                assert len(records) == 4, records  # SRV and TXT, for CalDAV and CardDAV
                dnsmasq = start_dnsmasq(base / "dnsmasq", records, port=53)
                stack.callback(dnsmasq.stop)
                service, port = start_service(folder, base, "--proxy-hops", "1")
                stack.callback(service.stop)
                # Only wellknown.test's bare domain is served (and has a certificate).
                nginx = start_nginx(base / "nginx", port, folder, [WELL_KNOWN], hosts_log=True)
                stack.callback(nginx.stop)
                thunderbird = start_thunderbird(
                    base / "thunderbird",
                    nginx.ca_file,
                    nginx.http_port,
                    nginx.https_port,
                    prefs=PREFS,
                    wrap=lambda command: with_resolv_conf(resolv_conf, command),
                    more_cas=[radicale.ca_file],
                )
                stack.callback(thunderbird.stop)
            yield World(radicale, dnsmasq, service, nginx, thunderbird)
    finally:
        namespace.close()


def found(world: World, email: str) -> tuple[list[tuple[str, str]], list[tuple[str, str, str]]]:
    """What Thunderbird found for ``email``: (url, name) of each address book,
    (type, uri, name) of each calendar, the URLs' escapes undone."""
    answer = world.thunderbird.find_dav(email)
    assert "error" not in answer, answer
    books = [(unquote(b["url"]), b["name"]) for b in answer["addressBooks"]]
    calendars = [(c["type"], unquote(c["uri"]), c["name"]) for c in answer["calendars"]]
    return books, calendars


def expected(world: World, email: str) -> tuple[list[tuple[str, str]], list[tuple[str, str, str]]]:
    domain = email.split("@", 1)[1]
    home = f"https://dav.{domain}:{world.radicale.port}/{email}/"
    return [(home + f"{CONTACTS}/", contacts_name(email))], [
        ("caldav", home + f"{CALENDAR}/", calendar_name(email))
    ]


def since(text: str, mark: int) -> str:
    return text[mark:]


def dns_asked(world: World, mark: int) -> list[tuple[str, str]]:
    return re.findall(r"query\[(\w+)\] (\S+) from", since(world.dnsmasq.started.log_text(), mark))


def test_found_through_the_records_dns_prints(world: World) -> None:
    """Thunderbird as it ships: the SRV and TXT records lead it to the DAV server,
    where everything it asks is of one origin."""
    email = f"ben@{SRV}"
    marks = (len(world.hosts_log()), len(world.dnsmasq.started.log_text()))
    assert found(world, email) == expected(world, email)
    asked = dns_asked(world, marks[1])
    for kind in ("carddavs", "caldavs"):
        assert ("SRV", f"_{kind}._tcp.{SRV}") in asked
        assert ("TXT", f"_{kind}._tcp.{SRV}") in asked
    # Nothing of srv.test's own reached nginx but the mail account's autoconfig.
    assert ".well-known/ca" not in since(world.hosts_log(), marks[0])


WELL_KNOWN_ASKED = [
    f'{WELL_KNOWN} {WELL_KNOWN} "/.well-known/carddav" 307',
    f'{WELL_KNOWN} {WELL_KNOWN} "/.well-known/caldav" 307',
]


def test_the_redirect_is_followed_and_its_answer_blocked(world: World) -> None:
    """Thunderbird as it ships, without SRV records: it asks the service's
    .well-known paths (after the SRV records, which are not there), follows the
    307 to the DAV server and logs in there, but Opaque Response Blocking drops
    the server's answer (XML, from another origin than the one asked): nothing
    is found. Observed with Thunderbird 153.8; if this test fails because
    something is found, Thunderbird has changed and docs/clients.md should too."""
    email = f"anna@{WELL_KNOWN}"
    marks = (len(world.hosts_log()), len(world.dnsmasq.started.log_text()))
    radicale_mark = len(world.radicale.started.log_text())
    answer = world.thunderbird.find_dav(email)
    assert "error" not in answer, answer
    assert (answer["addressBooks"], answer["calendars"]) == ([], [])
    assert answer["hostnames"] == [WELL_KNOWN]
    wait_for(
        lambda: all(w in since(world.hosts_log(), marks[0]) for w in WELL_KNOWN_ASKED),
        LOG_WAIT,
        "the .well-known requests in nginx's hosts.log",
    )
    asked = dns_asked(world, marks[1])
    assert ("SRV", f"_carddavs._tcp.{WELL_KNOWN}") in asked
    assert ("SRV", f"_caldavs._tcp.{WELL_KNOWN}") in asked
    # Where the redirect led: Radicale's root, logged in as the address.
    radicale = since(world.radicale.started.log_text(), radicale_mark)
    assert "PROPFIND request for '/'" in radicale
    assert f"Successful login: '{email}'" in radicale


def test_found_through_the_services_redirect_without_orb(world: World) -> None:
    """The same with Opaque Response Blocking off: the redirect's target is right
    for Thunderbird's own detection code, which finds both from the base URL."""
    email = f"anna@{WELL_KNOWN}"
    client = world.thunderbird.client
    client.execute_script(f"Services.prefs.setBoolPref({ORB!r}, false);")
    try:
        mark = len(world.hosts_log())
        assert found(world, email) == expected(world, email)
        wait_for(
            lambda: all(w in since(world.hosts_log(), mark) for w in WELL_KNOWN_ASKED),
            LOG_WAIT,
            "the .well-known requests in nginx's hosts.log",
        )
    finally:
        client.execute_script(f"Services.prefs.clearUserPref({ORB!r});")
