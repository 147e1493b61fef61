"""Autoconfig 1.2 (draft-ietf-mailmaint-autoconfig-06): the new keys, the document's
new parts, and that strict clients read exactly what they read before
(docs/clients.md#autoconfig-12-what-each-client-reads)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from lxml import etree

from autoconf import ispdb
from autoconf.address import parse_address
from autoconf.model import DavService, ManageSieve, OAuth2, Provider, Security
from autoconf.registry import load_folder
from autoconf.render import autoconfig
from tests import strict_readers
from tests.conftest import EXAMPLES
from tests.helpers import provider_from_yaml, provider_text, server_yaml, yaml_problems

THUNDERBIRD_DOMAINS = Path(__file__).parent / "data" / "thunderbird"
ISPDB = Path(__file__).resolve().parents[2] / "shared" / "ispdb"

EVERYTHING = """
jmap: {url: "https://jmap.example.com/.well-known/jmap"}
ews: {url: "https://mail.example.com/EWS/Exchange.asmx"}
activesync: {url: "https://mail.example.com/Microsoft-Server-ActiveSync"}
managesieve: {host: sieve.example.com, security: starttls}
calendar: {url: "https://dav.example.com/cal/"}
addressbook: {url: "https://dav.example.com/card/"}
mx_domains: [mx1.hoster.example, mx2.hoster.example]
oauth2:
  issuer: https://login.example.com
  scope: "IMAP SMTP offline_access"
  auth_url: https://login.example.com/authorize
  token_url: https://login.example.com/token
  client_id: open
"""


def document(text: str, address: str | None = "alice@example.com") -> etree._Element:
    provider = provider_from_yaml(text)
    parsed = parse_address(address) if address else None
    body = autoconfig.render(autoconfig.compile_provider(provider), parsed, "example.com")
    return etree.fromstring(body)


def test_the_new_parts_in_their_places() -> None:
    root = document(
        provider_text(server_yaml("imap", "ssl"), server_yaml("smtp", "ssl")) + EVERYTHING
    )
    assert root.get("version") == "1.2"
    email = root.find("emailProvider")
    assert email is not None
    assert [(d.get("purpose"), d.text) for d in email.findall("domain")] == [
        (None, "example.com"),
        ("mx", "mx1.hoster.example"),
        ("mx", "mx2.hoster.example"),
    ]
    incoming = email.findall("incomingServer")
    # IMAP first: the first server of a kind is a client's choice.
    assert [s.get("type") for s in incoming] == ["imap", "jmap", "ews", "activeSync"]
    for server, url in zip(
        incoming[1:],
        [
            "https://jmap.example.com/.well-known/jmap",
            "https://mail.example.com/EWS/Exchange.asmx",
            "https://mail.example.com/Microsoft-Server-ActiveSync",
        ],
        strict=True,
    ):
        assert server.findtext("url") == url
        assert server.findtext("username") == "alice@example.com"
        auth = server.find("authentication")
        assert auth is not None and (auth.get("system"), auth.text) == ("http", "basic")
    sieve = root.find("setupServer")
    assert sieve is not None and sieve.get("type") == "managesieve"
    assert [sieve.findtext(k) for k in ("hostname", "port", "socketType", "username")] == [
        "sieve.example.com",
        "4190",
        "STARTTLS",
        "alice@example.com",
    ]
    for tag, kind in (("calendar", "caldav"), ("addressBook", "carddav")):
        element = root.find(tag)
        assert element is not None and element.get("type") == kind
        assert element.findtext("url") == element.findtext("serverURL")
    oauth = root.find("oAuth2")
    assert oauth is not None
    assert oauth.findtext("issuer") == "https://login.example.com"
    assert oauth.findtext("clientID") == "open"
    assert oauth.find("clientSecret") is None
    assert not root.xpath("//password")


def test_a_client_secret_is_an_error() -> None:
    text = provider_text(server_yaml("imap", "ssl"), server_yaml("smtp", "ssl")) + (
        "oauth2: {issuer: login.example.com, scope: s, auth_url: 'https://l.example.com/a',"
        " token_url: 'https://l.example.com/t', client_secret: hunter2}\n"
    )
    problems = yaml_problems(text)
    assert [(p.path, p.message.split(":")[0]) for p in problems if p.is_error] == [
        ("oauth2.client_secret", "a client secret is never served")
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("http://login.example.com", "an issuer URL is https"),
        ("https://login.example.com/?tenant=1", "an issuer URL is https"),
        ("login_example", "is not a valid host name"),
    ],
)
def test_issuer_forms(value: str, message: str) -> None:
    text = provider_text(server_yaml("imap", "ssl"), server_yaml("smtp", "ssl")) + (
        f"oauth2: {{issuer: '{value}', scope: s, auth_url: 'https://l.example.com/a',"
        " token_url: 'https://l.example.com/t'}\n"
    )
    errors = [p for p in yaml_problems(text) if p.is_error]
    assert [p.path for p in errors] == ["oauth2.issuer"] and message in errors[0].message


def test_managesieve_and_mx_domains_are_checked() -> None:
    text = provider_text(server_yaml("imap", "ssl"), server_yaml("smtp", "ssl")) + (
        "managesieve: {host: 'sieve_x', port: 0, security: tls}\n"
        "mx_domains: [mx.example.com, 5, 'a b']\n"
    )
    paths = sorted(p.path for p in yaml_problems(text) if p.is_error)
    assert paths == [
        "managesieve.host",
        "managesieve.port",
        "managesieve.security",
        "mx_domains[1]",
        "mx_domains[2]",
    ]


# -- strict clients read what they read before ----------------------------------------


def with_everything(provider: Provider) -> Provider:
    """The provider with every 1.2 part set (its own servers untouched)."""
    return replace(
        provider,
        jmap="https://jmap.%EMAILDOMAIN%/session",
        ews="https://mail.example.net/EWS/Exchange.asmx",
        activesync="https://mail.example.net/Microsoft-Server-ActiveSync",
        managesieve=ManageSieve("sieve.example.net", 4190, Security.STARTTLS, "%EMAILADDRESS%"),
        calendar=provider.calendar or DavService("https://dav.example.net/c/", "%EMAILADDRESS%"),
        addressbook=provider.addressbook or DavService("https://dav.example.net/a/", "x"),
        mx_domains=("mx1.hoster.example", "hoster.example"),
        oauth2=provider.oauth2
        or OAuth2(
            "https://login.example.net",
            "IMAP SMTP",
            "https://login.example.net/a",
            "https://login.example.net/t",
            "open",
        ),
    )


def providers() -> list[Provider]:
    found = []
    for folder in (EXAMPLES, THUNDERBIRD_DOMAINS):
        found += list(load_folder(folder).providers)
    return found


@pytest.fixture(scope="module")
def ispdb_providers(tmp_path_factory: pytest.TempPathFactory) -> list[Provider]:
    out = tmp_path_factory.mktemp("ispdb") / "domains"
    assert ispdb.import_main(ISPDB, out, force=False) == 0
    result = load_folder(out)
    assert not result.errors
    return list(result.providers)


def read_all(provider: Provider, domain: str) -> list[object]:
    compiled = autoconfig.compile_provider(provider)
    reads = []
    for address in (parse_address(f"Some.One@{domain}"), None):
        body = autoconfig.render(compiled, address, domain)
        reads += [reader(body) for reader in strict_readers.READERS.values()]
    return reads


def assert_read_alike(all_providers: list[Provider]) -> None:
    differences = []
    for provider in all_providers:
        domain = next(iter(provider.concrete_domains), "catch-all.example")
        if read_all(provider, domain) != read_all(with_everything(provider), domain):
            differences.append(provider.file)
    assert not differences


def test_strict_clients_read_the_same_servers_for_every_test_domain() -> None:
    everyone = providers()
    assert len(everyone) >= 9
    assert_read_alike(everyone)


def test_strict_clients_read_the_same_servers_for_every_ispdb_provider(
    ispdb_providers: list[Provider],
) -> None:
    assert len(ispdb_providers) == 163
    assert_read_alike(ispdb_providers)
    # The readers are no pushover: the rejections the ISPDB documents are known for.
    rejected = [
        p
        for p in ispdb_providers
        if "rejected"
        in strict_readers.thunderbird_android(
            autoconfig.render(autoconfig.compile_provider(p), None, p.concrete_domains[0])
        )
    ]
    assert rejected
