"""`GET /tls/allowed?domain=NAME`: which names a TLS front may get a certificate for.

The DNS answers here come from a table the test writes (the real resolver
against a real dnsmasq is tests/e2e/test_caddy.py's and test_dns_check's part);
what is checked is the decision and its bounds.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from werkzeug.test import Client

from autoconf.app import Application
from autoconf.resolver import LookupFailed
from autoconf.tls_ask import CHECKS_BURST, TlsPermission


def domain_file(domains: str, imap_host: str = "imap.hoster.example") -> str:
    return f"""domains: {domains}
incoming:
  - type: imap
    host: {imap_host}
    security: ssl
outgoing:
  - host: smtp.hoster.example
    security: ssl
"""


FILES = {
    "listed.yaml": domain_file("[listed.example, müller.example]"),
    "wild.yaml": domain_file("['*.customers.example']"),
    "all.yaml": domain_file("['*']", imap_host="mail.%EMAILDOMAIN%"),
}
PUBLIC = "autoconf.hoster.example"


class Dns:
    """A zone of (name, type) -> records, and the lookups asked of it."""

    def __init__(self, records: dict[tuple[str, str], tuple[str, ...]]) -> None:
        self.records = records
        self.asked: list[tuple[str, str]] = []
        self.failing = False

    def __call__(self, name: str, rdtype: str) -> tuple[str, ...]:
        self.asked.append((name, rdtype))
        if self.failing:
            raise LookupFailed(f"{name} {rdtype}: no answer within 2 s")
        return self.records.get((name, rdtype), ())


ZONE = {
    ("good.customers.example", "MX"): ("10 mx1.hoster.example.",),
    ("other.customers.example", "MX"): ("10 mx.elsewhere.example.",),
    ("autoconfig.aliased.example", "CNAME"): ("autoconf.hoster.example.",),
    ("own.example", "MX"): ("10 mail.own.example.",),
}


@pytest.fixture
def dns() -> Dns:
    return Dns(dict(ZONE))


@pytest.fixture
def tls_app(make_app: Callable[..., Application], dns: Dns) -> Application:
    app = make_app(FILES, public_host=PUBLIC)
    app.service.tls = TlsPermission(dns)
    return app


@pytest.fixture
def tls(tls_app: Application) -> Client:
    return tls_app.test_client()


def ask(client: Client, name: str) -> tuple[int, str]:
    response = client.get("/tls/allowed", query_string={"domain": name})
    return response.status_code, response.get_data(as_text=True)


@pytest.mark.parametrize(
    "name",
    [
        "autoconfig.listed.example",
        "autodiscover.listed.example",
        "AUTOCONFIG.Listed.Example.",
        "autoconfig.xn--mller-kva.example",
        "autoconfig.müller.example",
        PUBLIC,
    ],
)
def test_listed_names_and_the_public_host_are_allowed_without_dns(
    tls: Client, dns: Dns, name: str
) -> None:
    status, text = ask(tls, name)
    assert (status, text.split(":")[0]) == (200, "allowed")
    assert dns.asked == []


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("listed.example", "not an autoconfig. or autodiscover. name"),
        ("www.listed.example", "not an autoconfig. or autodiscover. name"),
        ("imap.hoster.example", "not an autoconfig. or autodiscover. name"),
        ("autoconfig.example", "no domain file serves example"),
    ],
)
def test_other_names_are_refused(tls: Client, dns: Dns, name: str, why: str) -> None:
    status, text = ask(tls, name)
    assert status == 403
    assert why in text
    assert dns.asked == []


def test_a_wildcard_domain_needs_its_mx_at_the_provider(tls: Client, dns: Dns) -> None:
    assert ask(tls, "autoconfig.good.customers.example")[0] == 200
    status, text = ask(tls, "autoconfig.other.customers.example")
    assert status == 403
    assert "MX mx.elsewhere.example" in text
    # An MX at the domain itself does not count, even where a host is %EMAILDOMAIN%-based.
    status, text = ask(tls, "autodiscover.own.example")
    assert status == 403
    assert "MX mail.own.example" in text


def test_a_cname_to_the_public_host_is_enough(tls: Client) -> None:
    assert ask(tls, "autoconfig.aliased.example")[0] == 200
    assert ask(tls, "autodiscover.aliased.example")[0] == 403  # its own CNAME is absent


def test_verdicts_are_remembered(tls: Client, dns: Dns) -> None:
    for _ in range(3):
        assert ask(tls, "autoconfig.good.customers.example")[0] == 200
        assert ask(tls, "autoconfig.nowhere.example")[0] == 403
    assert dns.asked.count(("good.customers.example", "MX")) == 1
    assert dns.asked.count(("nowhere.example", "MX")) == 1


def test_dns_that_does_not_answer_refuses(tls: Client, dns: Dns) -> None:
    dns.failing = True
    status, text = ask(tls, "autoconfig.good.customers.example")
    assert status == 403
    assert "DNS did not tell" in text


def test_uncached_checks_are_rationed(tls_app: Application, dns: Dns) -> None:
    now = [1000.0]
    tls_app.service.tls = TlsPermission(dns, clock=lambda: now[0])
    client = tls_app.test_client()
    statuses = [ask(client, f"autoconfig.n{i}.example")[0] for i in range(CHECKS_BURST + 5)]
    assert statuses == [403] * CHECKS_BURST + [429] * 5
    # Listed names never wait for the ration.
    assert ask(client, "autoconfig.listed.example")[0] == 200
    now[0] += 3
    assert [ask(client, f"autoconfig.m{i}.example")[0] for i in range(4)] == [403] * 3 + [429]
    assert len(dns.asked) <= 2 * (CHECKS_BURST + 3)


@pytest.mark.parametrize(
    ("query", "status"),
    [({}, 400), ({"domain": ""}, 400), ({"domain": "a..b"}, 400), ({"domain": "x" * 300}, 400)],
)
def test_bad_names_are_400(tls: Client, query: dict[str, str], status: int) -> None:
    response = tls.get("/tls/allowed", query_string=query)
    assert response.status_code == status
    assert response.get_data(as_text=True).strip()


def test_only_the_machine_itself_may_ask(tls_app: Application) -> None:
    from werkzeug.test import Client as PlainClient

    outside = PlainClient(tls_app)
    response = outside.get(
        "/tls/allowed",
        query_string={"domain": "autoconfig.listed.example"},
        environ_base={"REMOTE_ADDR": "203.0.113.9"},
    )
    assert response.status_code == 404
    forwarded = tls_app.test_client().get(
        "/tls/allowed",
        query_string={"domain": "autoconfig.listed.example"},
        headers={"X-Forwarded-For": "203.0.113.9"},
    )
    assert forwarded.status_code == 404


def test_verdicts_are_counted(tls_app: Application) -> None:
    client = tls_app.test_client()
    ask(client, "autoconfig.listed.example")
    ask(client, "autoconfig.nowhere.example")
    _, body = tls_app.metrics.exposition()
    text = body.decode()
    assert 'endpoint="tls_allowed"' in text
    assert 'status="403"' in text


def test_an_mx_at_one_of_the_files_mx_domains_counts(
    make_app: Callable[..., Application], dns: Dns
) -> None:
    """Issue 12's MX path with a file's mx_domains (its servers at a name of their own)."""
    files = {
        "all.yaml": domain_file("['*']", imap_host="mail.%EMAILDOMAIN%")
        + "mx_domains: [mx.elsewhere.example]\n"
    }
    app = make_app(files, public_host=PUBLIC)
    app.service.tls = TlsPermission(dns)
    client = app.test_client()
    assert ask(client, "autoconfig.other.customers.example")[0] == 200
    assert ask(client, "autoconfig.own.example")[0] == 403
