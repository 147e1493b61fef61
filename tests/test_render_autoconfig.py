"""Thunderbird autoconfig documents, parsed and compared with the YAML they come from."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from lxml import etree

from autoconf.address import parse_address
from autoconf.model import DEFAULT_PORTS, Security, ServerType
from autoconf.render import autoconfig
from tests.conftest import EXAMPLES
from tests.helpers import provider_from_yaml, provider_text, server_yaml

SOCKET = {"ssl": "SSL", "starttls": "STARTTLS", "none": "plain"}


def render(
    text: str, address: str | None = "alice@example.com", domain: str = ""
) -> etree._Element:
    provider = provider_from_yaml(text)
    compiled = autoconfig.compile_provider(provider)
    parsed = parse_address(address) if address else None
    body = autoconfig.render(compiled, parsed, parsed.domain if parsed else domain)
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    return etree.fromstring(body)


def expected_username(template: str, local: str, domain: str) -> str:
    return (
        template.replace("%EMAILADDRESS%", f"{local}@{domain}")
        .replace("%EMAILLOCALPART%", local)
        .replace("%EMAILDOMAIN%", domain)
    )


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_matches_its_yaml(path: Path) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    first_domain = data["domains"][0]
    from autoconf.address import normalize_domain

    domain = normalize_domain(first_domain)
    root = render(path.read_text(encoding="utf-8"), f"Bob.Smith@{first_domain}")
    assert root.tag == "clientConfig" and root.get("version") == "1.2"
    assert root.nsmap == {}
    provider = root.find("emailProvider")
    assert provider is not None
    assert provider.get("id") == data["provider"]["id"]
    assert provider.findtext("displayName") == data["provider"]["name"]
    assert provider.findtext("displayShortName") == data["provider"]["short_name"]
    assert domain in provider.xpath("domain/text()")
    for kind, tag in (("incoming", "incomingServer"), ("outgoing", "outgoingServer")):
        # The URL-based servers of 1.2 (activesync here) come after these.
        servers = [s for s in provider.findall(tag) if s.get("type") in ("imap", "pop3", "smtp")]
        assert len(servers) == len(data[kind])
        for element, server in zip(servers, data[kind], strict=True):
            security = server["security"]
            assert element.get("type") == server["type"]
            assert element.findtext("hostname") == server["host"]
            default = DEFAULT_PORTS[(ServerType(server["type"]), Security(security))]
            assert int(element.findtext("port") or 0) == server.get("port", default)
            assert element.findtext("socketType") == SOCKET[security]
            template = server.get("username", "%EMAILADDRESS%")
            assert element.findtext("username") == expected_username(template, "Bob.Smith", domain)
            auth = server.get("auth", "password-cleartext")
            assert element.xpath("authentication/text()") == (
                auth if isinstance(auth, list) else [auth]
            )
    assert not root.xpath("//password")


def test_pop3_options_and_extras() -> None:
    root = render((EXAMPLES / "example.com.yaml").read_text())
    pop3 = root.find("emailProvider/incomingServer[@type='pop3']/pop3")
    assert pop3 is not None
    assert pop3.findtext("leaveMessagesOnServer") == "true"
    assert pop3.findtext("daysToLeaveMessagesOnServer") == "14"
    assert pop3.findtext("downloadOnBiff") == "true"
    assert root.find("webMail/loginPage").get("url") == "https://webmail.example.com/"
    doc = root.find("emailProvider/documentation")
    assert doc.get("url") == "https://example.com/help/mail"
    assert {d.get("lang"): d.text for d in doc.findall("descr")} == {
        "en": "Setting up mail",
        "de": "E-Mail einrichten",
    }


@pytest.mark.parametrize(
    "address", ["o'brien@example.com", "a&b@example.com", '"x<y>&z"@example.com']
)
def test_hostile_local_parts_give_well_formed_xml(address: str) -> None:
    root = render(provider_text(server_yaml("imap", "ssl"), server_yaml("smtp", "ssl")), address)
    assert root.xpath("//incomingServer/username/text()") == [address]
    assert root.xpath("//outgoingServer/username/text()") == [address]


def test_without_address_only_the_domain_is_filled() -> None:
    text = provider_text(
        "  - {type: imap, host: 'mail.%EMAILDOMAIN%', security: ssl}\n",
        "  - {type: smtp, host: smtp.example.com, security: ssl, username: '%EMAILLOCALPART%'}\n",
    )
    root = render(text, None, "example.com")
    assert root.findtext("emailProvider/incomingServer/hostname") == "mail.example.com"
    assert root.findtext("emailProvider/incomingServer/username") == "%EMAILADDRESS%"
    assert root.findtext("emailProvider/outgoingServer/username") == "%EMAILLOCALPART%"


def test_without_address_an_idn_domain_fills_the_domain_part_of_the_address() -> None:
    """One login name however the client asked: for a domain with A-labels the
    domain part of %EMAILADDRESS% is the service's, only the local part the client's."""
    text = provider_text(
        "  - {type: imap, host: imap.example.com, security: ssl}\n",
        "  - {type: smtp, host: smtp.example.com, security: ssl}\n",
    )
    root = render(text, None, "xn--mller-kva.example")
    wanted = "%EMAILLOCALPART%@xn--mller-kva.example"
    assert root.findtext("emailProvider/incomingServer/username") == wanted


def test_plaintext_rule_drops_cleartext_beside_tls() -> None:
    text = provider_text(
        server_yaml("imap", "none") + server_yaml("imap", "ssl"),
        server_yaml("smtp", "none"),
    )
    root = render(text)
    assert root.xpath("//incomingServer/socketType/text()") == ["SSL"]
    # No TLS outgoing server exists, so the cleartext one is all there is.
    assert root.xpath("//outgoingServer/socketType/text()") == ["plain"]


def test_wildcard_and_catch_all_name_the_requested_domain() -> None:
    text = (
        "domains: ['*.example.com', example.org]\n"
        "incoming: [{type: imap, host: 'imap.%EMAILDOMAIN%', security: ssl}]\n"
        "outgoing: [{type: smtp, host: smtp.example.org, security: ssl}]\n"
    )
    root = render(text, "a@shop.example.com")
    assert root.xpath("//domain/text()") == ["example.org", "shop.example.com"]
    assert root.findtext("emailProvider/incomingServer/hostname") == "imap.shop.example.com"
    root = render(text, "a@example.org")
    assert root.xpath("//domain/text()") == ["example.org"]


def test_a_long_domain_list_names_only_the_requested_domain() -> None:
    domains = ", ".join(f"d{i}.example" for i in range(autoconfig.MAX_LISTED_DOMAINS + 1))
    text = provider_text(server_yaml("imap", "ssl"), server_yaml("smtp", "ssl"))
    text = text.replace("domains: [example.com]", f"domains: [{domains}]")
    root = render(text, "a@d7.example")
    assert root.xpath("//domain/text()") == ["d7.example"]


def test_every_authentication_in_order_and_oauth2_dav() -> None:
    text = provider_text(
        server_yaml("imap", "ssl", auth="[OAuth2, password-encrypted]"),
        server_yaml("smtp", "starttls", auth="[GSSAPI, NTLM]"),
        "oauth2: {issuer: login.example.com, scope: 'mail offline_access',"
        " auth_url: 'https://login.example.com/a', token_url: 'https://login.example.com/t'}\n"
        "calendar: {url: 'https://dav.example.com/cal/%EMAILADDRESS%/'}\n"
        "addressbook: {url: 'https://dav.example.com/card/', username: '%EMAILLOCALPART%'}\n",
    )
    root = render(text, "eve@example.com")
    assert root.xpath("//incomingServer/authentication/text()") == ["OAuth2", "password-encrypted"]
    assert root.xpath("//outgoingServer/authentication/text()") == ["GSSAPI", "NTLM"]
    assert root.findtext("oAuth2/issuer") == "login.example.com"
    assert root.findtext("oAuth2/scope") == "mail offline_access"
    assert root.findtext("oAuth2/authURL") == "https://login.example.com/a"
    assert root.findtext("oAuth2/tokenURL") == "https://login.example.com/t"
    assert root.find("calendar").get("type") == "caldav"
    assert root.findtext("calendar/serverURL") == "https://dav.example.com/cal/eve@example.com/"
    assert root.findtext("calendar/username") == "eve@example.com"
    assert root.find("addressBook").get("type") == "carddav"
    assert root.findtext("addressBook/username") == "eve"
