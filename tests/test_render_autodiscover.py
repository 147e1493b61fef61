"""Outlook autodiscover: the pinned security table, the POX fields, the hardened parser."""

from __future__ import annotations

import json

import pytest
from lxml import etree

from autoconf.address import parse_address
from autoconf.errors import BadRequest, InvalidProtocol, SchemaNotOffered
from autoconf.render import autoconfig, autodiscover
from tests.helpers import provider_from_yaml, provider_text, server_yaml

NS = {
    "r": autodiscover.NS_RESPONSE,
    "o": autodiscover.NS_OUTLOOK_RESPONSE,
    "m": autodiscover.NS_MOBILESYNC_RESPONSE,
}
REQUEST = """<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request>
    <EMailAddress>{email}</EMailAddress>
    <AcceptableResponseSchema>{schema}</AcceptableResponseSchema>
  </Request>
</Autodiscover>"""


def pox(text: str, address: str = "alice@example.com") -> etree._Element:
    provider = provider_from_yaml(text)
    body = autodiscover.render(
        autodiscover.compile_provider(provider),
        parse_address(address),
        autodiscover.NS_OUTLOOK_RESPONSE,
    )
    assert b"<a:" not in body and b"xmlns:" not in body  # default namespaces only
    return etree.fromstring(body)


def protocols(root: etree._Element) -> list[dict[str, str]]:
    return [
        {etree.QName(field).localname: field.text or "" for field in protocol}
        for protocol in root.xpath("o:Response/o:Account/o:Protocol", namespaces=NS)
    ]


# Every type, security and a spread of ports: (SSL, Encryption) in POX and
# socketType in autoconfig must follow the YAML, never the port.
PORTS = [25, 110, 143, 465, 587, 993, 995, 2525]
TABLE = [
    (kind, security, port)
    for kind in ("imap", "pop3", "smtp")
    for security in ("ssl", "starttls", "none")
    for port in PORTS
]
EXPECTED = {
    "ssl": ("on", "SSL", "SSL"),
    "starttls": ("on", "TLS", "STARTTLS"),
    "none": ("off", "None", "plain"),
}


def _with(kind: str, server: str, sibling: bool) -> str:
    """A provider with this server, and a TLS server of the same kind beside it or not."""
    incoming, outgoing = server_yaml("imap", "ssl", 9993), server_yaml("smtp", "ssl", 9465)
    if kind == "smtp":
        return provider_text(incoming, server + (outgoing if sibling else ""))
    return provider_text(server + (incoming if sibling else ""), outgoing)


@pytest.mark.parametrize(("kind", "security", "port"), TABLE)
def test_security_mapping_is_pinned(kind: str, security: str, port: int) -> None:
    server = server_yaml(kind, security, port)
    ssl, encryption, socket_type = EXPECTED[security]

    def ours(text: str) -> list[dict[str, str]]:
        found = protocols(pox(text))
        return [p for p in found if p["Type"] == kind.upper() and p["Port"] == str(port)]

    # The plaintext rule: beside a TLS server of the same kind, cleartext is not served.
    assert len(ours(_with(kind, server, sibling=True))) == (0 if security == "none" else 1)
    text = _with(kind, server, sibling=False)
    found = ours(text)
    assert len(found) == 1
    assert (found[0]["SSL"], found[0]["Encryption"]) == (ssl, encryption)
    provider = provider_from_yaml(text)
    document = etree.fromstring(
        autoconfig.render(
            autoconfig.compile_provider(provider), parse_address("a@example.com"), "example.com"
        )
    )
    tag = "outgoingServer" if kind == "smtp" else "incomingServer"
    assert document.xpath(f"//{tag}[port={port}]/socketType/text()") == [socket_type]


def test_pox_fields_for_password_accounts() -> None:
    text = provider_text(
        server_yaml("imap", "ssl") + server_yaml("pop3", "starttls"),
        server_yaml("smtp", "starttls")
        + server_yaml("smtp", "ssl", username="'%EMAILLOCALPART%'")
        + "  - {type: smtp, host: relay.example.com, security: ssl, auth: client-IP-address}\n",
    )
    root = pox(text, "Bob@Example.com")
    assert root.xpath("o:Response/o:Account/o:AccountType/text()", namespaces=NS) == ["email"]
    assert root.xpath("o:Response/o:Account/o:Action/text()", namespaces=NS) == ["settings"]
    found = protocols(root)
    assert [(p["Type"], p["Server"], p["Port"]) for p in found] == [
        ("IMAP", "imap.example.com", "993"),
        ("POP3", "pop3.example.com", "110"),
        ("SMTP", "smtp.example.com", "587"),
        ("SMTP", "smtp.example.com", "465"),
        ("SMTP", "relay.example.com", "465"),
    ]
    assert all(p["SPA"] == "off" and p["DomainRequired"] == "off" for p in found)
    assert [p["LoginName"] for p in found] == [
        "Bob@example.com",
        "Bob@example.com",
        "Bob@example.com",
        "Bob",
        "Bob@example.com",
    ]
    assert [p["AuthRequired"] for p in found] == ["on", "on", "on", "on", "off"]
    # UsePOPAuth: SMTP's login equals the (first) incoming one.
    assert [p.get("UsePOPAuth") for p in found] == [None, None, "on", "off", "off"]


@pytest.mark.parametrize(
    ("auth", "spa"),
    [("NTLM", "on"), ("GSSAPI", "on"), ("password-encrypted", "off"), ("OAuth2", "off")],
)
def test_spa_only_for_ntlm_and_kerberos(auth: str, spa: str) -> None:
    text = provider_text(server_yaml("imap", "ssl", auth=auth), server_yaml("smtp", "ssl"))
    assert protocols(pox(text))[0]["SPA"] == spa


def request(email: str = "a@example.com", schema: str = autodiscover.NS_OUTLOOK_RESPONSE) -> bytes:
    return REQUEST.format(email=email, schema=schema).encode()


def test_request_parsing() -> None:
    parsed = autodiscover.parse_request(request("  Bob@Example.com "))
    assert parsed.email == "Bob@Example.com"
    assert parsed.response_schema == autodiscover.NS_OUTLOOK_RESPONSE
    utf16 = request().decode().replace('encoding="utf-8"', 'encoding="utf-16"').encode("utf-16")
    assert autodiscover.parse_request(utf16).email == "a@example.com"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not xml",
        b"<Autodiscover>",
        request().replace(b"outlook/requestschema/2006", b"outlook/requestschema/2099"),
        request().replace(b"<EMailAddress>a@example.com</EMailAddress>", b""),
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        + request().split(b"?>", 1)[1].replace(b"a@example.com", b"&e;"),
        b'<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><x>&lol2;</x>',
        b'<!doctype x SYSTEM "http://127.0.0.1:9/x.dtd"><x/>',
        # In UTF-16 the byte search for a DOCTYPE cannot see it; the parser's record can.
        '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x [<!ENTITY e "x">]>'.encode("utf-16")
        + request().split(b"?>", 1)[1].decode().encode("utf-16")[2:],
    ],
)
def test_bad_requests_are_600(body: bytes) -> None:
    with pytest.raises(BadRequest) as caught:
        autodiscover.parse_request(body)
    assert caught.value.pox_code == 600


def test_unsupported_schema_is_601() -> None:
    with pytest.raises(SchemaNotOffered) as caught:
        autodiscover.parse_request(request(schema="http://example.com/other"))
    assert caught.value.pox_code == 601


def test_mobilesync_needs_activesync() -> None:
    text = provider_text(server_yaml("imap", "ssl"), server_yaml("smtp", "ssl"))
    compiled = autodiscover.compile_provider(provider_from_yaml(text))
    with pytest.raises(SchemaNotOffered):
        autodiscover.render(
            compiled, parse_address("a@example.com"), autodiscover.NS_MOBILESYNC_RESPONSE
        )
    text += "activesync: {url: 'https://eas.example.com/Microsoft-Server-ActiveSync'}\n"
    compiled = autodiscover.compile_provider(provider_from_yaml(text))
    root = etree.fromstring(
        autodiscover.render(
            compiled, parse_address("a@example.com"), autodiscover.NS_MOBILESYNC_RESPONSE
        )
    )
    server = "m:Response/m:Action/m:Settings/m:Server/m:"
    assert root.xpath(server + "Type/text()", namespaces=NS) == ["MobileSync"]
    assert root.xpath(server + "Url/text()", namespaces=NS) == [
        "https://eas.example.com/Microsoft-Server-ActiveSync"
    ]
    assert root.xpath("m:Response/m:User/m:EMailAddress/text()", namespaces=NS) == ["a@example.com"]


def test_error_document_shape() -> None:
    root = etree.fromstring(autodiscover.error_document(601, "why"))
    error = root.xpath("r:Response/r:Error", namespaces=NS)[0]
    assert error.get("Time") and error.get("Id", "").isdigit()
    assert error.xpath("r:ErrorCode/text()", namespaces=NS) == ["601"]
    assert error.xpath("r:DebugData/text()", namespaces=NS) == ["why"]


def test_json_protocols() -> None:
    provider = provider_from_yaml(
        provider_text(server_yaml("imap", "ssl"), server_yaml("smtp", "ssl"))
    )
    for protocol in ("AutodiscoverV1", "autodiscoverv1", "AUTODISCOVERV1"):
        answer = json.loads(autodiscover.render_json(protocol, provider, "auto.example.net"))
        assert answer == {
            "Protocol": "AutodiscoverV1",
            "Url": "https://auto.example.net/Autodiscover/Autodiscover.xml",
        }
    for protocol in ("ActiveSync", "Ews", ""):
        with pytest.raises(InvalidProtocol):
            autodiscover.render_json(protocol, provider, "auto.example.net")
