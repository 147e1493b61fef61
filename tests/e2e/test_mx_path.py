"""The MX path: Thunderbird 153 finds a hoster's customer through the domain's MX.

Nothing answers at the customer's own names: nginx holds one certificate, for
autoconfig.hoster.test, so every https:// URL of customer.test fails its TLS
handshake; Thunderbird's port 80 leads to a port where nothing listens, so its
http:// fallback is refused at once; the ISPDB (live.thunderbird.net, forced
to 127.0.0.1:443 like every name) fails on the certificate too. The
customer's MX record points at mx1.hoster.test; Thunderbird takes its base
domain and asks https://autoconfig.hoster.test/mail/config-v1.1.xml with the
customer's address, and the service answers for the address, not for the Host
(tests/data/mx/hoster.yaml, the hoster's own domain, has other servers).

How Thunderbird looks the MX up (FetchConfig.sys.mjs: getMX, DNS.sys.mjs and
DNS.worker.mjs): ``res_search`` of the C library's libresolv, through ctypes in a
worker, so it reads /etc/resolv.conf and network.dns.forceResolve (which only
Necko's HTTP and TLS connections obey) has no say: without the resolv.conf
below, Thunderbird finds nothing. So the test gives Thunderbird a resolver
without touching the machine's:

- one network namespace (tests/e2e/namespace.py), with only ``lo``: the test's
  thread steps into it while it starts dnsmasq (on 127.0.0.1:53, answering the
  MX records and NXDOMAIN for every other name under .test), the service, nginx
  and Thunderbird, which all inherit it; the test keeps running outside and
  talks to Thunderbird over the Marionette socket it opened inside;
- Thunderbird alone in a mount namespace of its own (``unshare --mount``) where
  the test's resolv.conf (``nameserver 127.0.0.1``, one try of 1 s) is
  bind-mounted over /etc/resolv.conf.

Everything is stopped by its PID; the namespace goes with its last process.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.e2e.dnsmasq import Dnsmasq, start_dnsmasq
from tests.e2e.namespace import NetworkNamespace, with_resolv_conf, write_resolv_conf
from tests.e2e.nginx import Nginx, start_nginx
from tests.e2e.processes import Started, free_port, start_service
from tests.e2e.test_thunderbird import assert_same, expected, servers
from tests.e2e.thunderbird import Thunderbird, start_thunderbird
from tests.helpers import wait_for

MX_DOMAINS_DIR = Path(__file__).resolve().parents[1] / "data" / "mx"
HOSTER = "hoster.test"
HOSTER_AUTOCONFIG = f"autoconfig.{HOSTER}"
# The customer domains and their MX hosts: both of the hoster, under one base domain.
MX = {"customer.test": "mx1.hoster.test", "shop.test": "mx2.in.hoster.test"}
# What Thunderbird asks after the MX lookup (FetchConfig.forMX): for an MX host
# deeper than the base domain, its parent domain first, then the base domain,
# each at its autoconfig name (https only) and in the ISPDB.
ASKED_AFTER_MX = {
    "customer.test": ["https://autoconfig.hoster.test/", "https://live.thunderbird.net/"],
    "shop.test": [
        "https://autoconfig.in.hoster.test/",
        "https://live.thunderbird.net/",
        "https://autoconfig.hoster.test/",
        "https://live.thunderbird.net/",
    ],
}
CUSTOMERS = ["kim@customer.test", "lee@shop.test"]
# Thunderbird's account-setup log (gAccountSetupLogger) to its standard output,
# read from thunderbird.log.
PREFS = {"mail.setup.loglevel": "All", "devtools.console.stdout.chrome": True}
# A failed lookup fails in milliseconds here (refused, a TLS failure, NXDOMAIN);
# one that waited for a timeout (the ISPDB's is 10 s, FetchHTTP's 5 s) would not.
FAST = 4.0
LOG_WAIT = 10.0


@dataclass
class World:
    dnsmasq: Dnsmasq
    service: Started
    nginx: Nginx
    thunderbird: Thunderbird

    def hosts_log(self) -> str:
        """nginx's log of every request: SNI, Host, the whole target, the status."""
        path = self.nginx.started.log.parent / "hosts.log"
        return path.read_text(encoding="utf-8") if path.exists() else ""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("mx")
    resolv_conf = write_resolv_conf(base / "resolv.conf", "127.0.0.1")
    namespace = NetworkNamespace.create()
    try:
        with ExitStack() as stack:
            with namespace.inside():
                records = [f"--mx-host={domain},{host},10" for domain, host in MX.items()]
                dnsmasq = start_dnsmasq(base / "dnsmasq", records, port=53)
                stack.callback(dnsmasq.stop)
                service, port = start_service(MX_DOMAINS_DIR, base, "--proxy-hops", "1")
                stack.callback(service.stop)
                # The front knows the hoster's domain alone: certificates for
                # its names, none for any customer's.
                front = base / "front"
                front.mkdir()
                shutil.copy(MX_DOMAINS_DIR / "hoster.yaml", front / "hoster.yaml")
                nginx = start_nginx(base / "nginx", port, front, [HOSTER], hosts_log=True)
                stack.callback(nginx.stop)
                thunderbird = start_thunderbird(
                    base / "thunderbird",
                    nginx.ca_file,
                    free_port(),  # port 80: nothing listens there
                    nginx.https_port,
                    prefs=PREFS,
                    wrap=lambda command: with_resolv_conf(resolv_conf, command),
                )
                stack.callback(thunderbird.stop)
            yield World(dnsmasq, service, nginx, thunderbird)
    finally:
        namespace.close()


def timed(
    thunderbird_call: Callable[..., dict[str, Any]], *args: str
) -> tuple[dict[str, Any], float]:
    began = time.monotonic()
    answer = thunderbird_call(*args)
    return answer, time.monotonic() - began


def asked_with(email: str) -> str:
    """The line nginx logs for the MX path's request: SNI and Host are the hoster's
    name, the address is the customer's, as Thunderbird sends it."""
    target = f"/mail/config-v1.1.xml?emailaddress={quote(email, safe='')}"
    return f'{HOSTER_AUTOCONFIG} {HOSTER_AUTOCONFIG} "{target}" 200'


def appears(read: Callable[[], str], since: int, wanted: Callable[[str], bool], what: str) -> str:
    """What ``read()`` has gained past ``since`` once ``wanted`` holds of it: the
    logs are written by other processes, a moment after they answered."""
    wait_for(lambda: wanted(read()[since:]), LOG_WAIT, what)
    return read()[since:]


@pytest.mark.parametrize("email", CUSTOMERS)
def test_account_hub_ends_with_the_yaml_account_through_mx(world: World, email: str) -> None:
    before = len(world.hosts_log())
    answer, took = timed(world.thunderbird.discover, email)
    assert "error" not in answer, answer
    config = answer["config"]
    assert config is not None, "Thunderbird found no configuration"
    # The MX path fetches with the same code as the domain's own https URL
    # (_fetchConfigFromIsp, https only): the config says no more than that.
    assert (config["source"], config["subSource"]) == ("xml", "xml-from-isp-https")
    want = expected("customer.yaml", email, MX_DOMAINS_DIR)
    assert_same(servers(config, "incoming"), want["incoming"])
    assert_same(servers(config, "outgoing"), want["outgoing"])
    # The one request that reached nginx: the hoster's name, the customer's address.
    logged = appears(world.hosts_log, before, bool, "the request in nginx's hosts.log")
    assert logged.splitlines() == [asked_with(email)]
    assert took < FAST, f"the search took {took:.1f} s: something waited for a timeout"


@pytest.mark.parametrize("email", CUSTOMERS)
def test_mx_lookup_is_thunderbirds_own_through_resolv_conf(world: World, email: str) -> None:
    """FetchConfig.forMX alone: dnsmasq is asked for the MX record (forceResolve did
    not answer it), Thunderbird takes the MX host's base domain, and the service
    answers the customer's address behind the hoster's name."""
    domain = email.split("@", 1)[1]
    queries, thunderbird_log = world.dnsmasq.started.log_text, world.thunderbird.started.log_text
    marks = [len(read()) for read in (queries, thunderbird_log, world.hosts_log)]
    served_before = len(world.service.log_text())
    answer, _ = timed(world.thunderbird.fetch_config, "forMX", email)
    assert "error" not in answer, answer
    want = expected("customer.yaml", email, MX_DOMAINS_DIR)
    assert_same(servers(answer["config"], "incoming"), want["incoming"])
    assert_same(servers(answer["config"], "outgoing"), want["outgoing"])
    appears(queries, marks[0], lambda t: f"query[MX] {domain} from" in t, "the MX query")
    # Thunderbird's own account of it (gAccountSetupLogger, at level All).
    base = f'"base domain" "{HOSTER}" "for" "{MX[domain]}"'
    asked = ASKED_AFTER_MX[domain]

    def requested(text: str) -> list[str]:
        return re.findall(r'"Requesting" (https?://[^/]+/)', text)

    log = appears(
        thunderbird_log,
        marks[1],
        lambda t: base in t and len(requested(t)) >= len(asked),
        "the base domain and the requests after it",
    )
    assert requested(log) == asked
    logged = appears(world.hosts_log, marks[2], bool, "the request in nginx's hosts.log")
    assert logged.splitlines() == [asked_with(email)]
    # The service saw the customer's domain (its log hides the local part).
    line = f"/mail/config-v1.1.xml?emailaddress=***@{domain}"
    appears(world.service.log_text, served_before, lambda t: line in t, "the service's line")


@pytest.mark.parametrize("lookup", ["fromISP", "fromDB"])
def test_nothing_answers_at_the_customers_own_names(world: World, lookup: str) -> None:
    """The premise: the customer's autoconfig URLs (https and http) and the ISPDB
    give nothing, and fail at once rather than on a timeout."""
    before = len(world.hosts_log())
    answer, took = timed(world.thunderbird.fetch_config, lookup, CUSTOMERS[0])
    assert "error" in answer, answer
    assert world.hosts_log()[before:] == ""  # no TLS handshake got as far as a request
    assert took < FAST, f"{lookup} took {took:.1f} s"
