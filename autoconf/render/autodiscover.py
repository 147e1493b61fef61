"""Outlook autodiscover: the POX request parser, responses and error documents,
and the Autodiscover v2 JSON answers (docs/http.md#outlook-autodiscover-pox,
#autodiscover-v2-json).

Default namespaces only, never prefixes: Thunderbird matches element names
literally and a prefix breaks it.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

from lxml import etree

from autoconf.address import Address
from autoconf.errors import BadRequest, InvalidProtocol, SchemaNotOffered
from autoconf.model import Auth, Provider, Security, Server, ServerType
from autoconf.placeholders import EMAILADDRESS
from autoconf.render.template import Template, placeholder_values
from autoconf.render.xml import child, default_ns_element, serialize

NS_RESPONSE = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
NS_OUTLOOK_REQUEST = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
NS_OUTLOOK_RESPONSE = (
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
)
NS_MOBILESYNC_REQUEST = (
    "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/requestschema/2006"
)
NS_MOBILESYNC_RESPONSE = (
    "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006"
)
# The response schemas each request schema may ask for.
OFFERED = {
    NS_OUTLOOK_REQUEST: NS_OUTLOOK_RESPONSE,
    NS_MOBILESYNC_REQUEST: NS_MOBILESYNC_RESPONSE,
}

# Pinned (docs/http.md#the-pox-mapping): peers disagree, and clients read it differently.
SSL_AND_ENCRYPTION = {
    Security.SSL: ("on", "SSL"),
    Security.STARTTLS: ("on", "TLS"),
    Security.NONE: ("off", "None"),
}
_SPA_METHODS = frozenset({Auth.NTLM, Auth.GSSAPI})
_TYPES = {ServerType.IMAP: "IMAP", ServerType.POP3: "POP3", ServerType.SMTP: "SMTP"}

MAX_BODY = 64 * 1024
_XINCLUDE = frozenset({"http://www.w3.org/2001/XInclude", "http://www.w3.org/2003/XInclude"})


# ---------------------------------------------------------------------------
# Requests


@dataclass(frozen=True, slots=True)
class PoxRequest:
    email: str
    response_schema: str


_parsers = threading.local()


def _hardened_parser() -> etree.XMLParser:
    """No entities, no DTD, no network. One per thread: making one costs more than
    parsing a request, and lxml parsers must not be shared between threads."""
    parser: etree.XMLParser | None = getattr(_parsers, "parser", None)
    if parser is None:
        parser = _parsers.parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            huge_tree=False,
            remove_pis=True,
        )
    return parser


def parse_request(body: bytes) -> PoxRequest:
    """Read an Outlook request; BadRequest (ErrorCode 600) or SchemaNotOffered (601)."""
    if b"<!" in body and b"DOCTYPE" in body.upper():
        raise BadRequest("a DOCTYPE is not allowed")
    try:
        root = etree.fromstring(body, _hardened_parser())
    except etree.XMLSyntaxError as exc:
        raise BadRequest(f"malformed XML: {exc.msg}") from None
    if root is None:
        raise BadRequest("empty request")
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:  # type: ignore[union-attr]
        raise BadRequest("a DOCTYPE is not allowed")
    tag = etree.QName(root)
    if tag.localname != "Autodiscover" or tag.namespace not in OFFERED:
        raise BadRequest(f"not an Autodiscover request in the {NS_OUTLOOK_REQUEST} namespace")
    if any(etree.QName(e).namespace in _XINCLUDE for e in root.iter(etree.Element)):
        raise BadRequest("XInclude is not allowed")
    ns = {"r": tag.namespace}
    address = root.find("r:Request/r:EMailAddress", namespaces=ns)
    if address is not None and len(address):
        raise BadRequest("EMailAddress must be text only")
    email = root.findtext("r:Request/r:EMailAddress", namespaces=ns)
    if email is None or not email.strip():
        raise BadRequest("the request has no EMailAddress")
    schema = root.findtext("r:Request/r:AcceptableResponseSchema", namespaces=ns)
    schema = (schema or OFFERED[tag.namespace]).strip()
    if schema not in OFFERED.values():
        raise SchemaNotOffered(f"response schema {schema[:200]!r} is not offered")
    return PoxRequest(email.strip(), schema)


# ---------------------------------------------------------------------------
# Responses


@dataclass(frozen=True, slots=True)
class AutodiscoverDocuments:
    outlook: Template
    mobilesync: Template | None


def request_document(address: str, response_schema: str = NS_OUTLOOK_RESPONSE) -> bytes:
    """The POX request Outlook sends for ``address`` (what ``render`` asks the service)."""
    root = etree.Element(f"{{{NS_OUTLOOK_REQUEST}}}Autodiscover", nsmap={None: NS_OUTLOOK_REQUEST})  # type: ignore[dict-item]
    request = etree.SubElement(root, f"{{{NS_OUTLOOK_REQUEST}}}Request")
    etree.SubElement(request, f"{{{NS_OUTLOOK_REQUEST}}}EMailAddress").text = address
    schema = etree.SubElement(request, f"{{{NS_OUTLOOK_REQUEST}}}AcceptableResponseSchema")
    schema.text = response_schema
    return bytes(etree.tostring(root, xml_declaration=True, encoding="utf-8"))


def compile_provider(provider: Provider) -> AutodiscoverDocuments:
    root = default_ns_element(NS_RESPONSE, "Autodiscover")
    response = default_ns_element(NS_OUTLOOK_RESPONSE, "Response", root)
    user = child(response, "User")
    child(user, "AutoDiscoverSMTPAddress", EMAILADDRESS)
    account = child(response, "Account")
    child(account, "AccountType", "email")
    child(account, "Action", "settings")
    incoming = provider.served_incoming
    for server in incoming:
        _protocol(account, server)
    first_login = incoming[0].username if incoming and incoming[0].needs_login else None
    for server in provider.served_outgoing:
        protocol = _protocol(account, server)
        same_login = server.needs_login and server.username == first_login
        child(protocol, "UsePOPAuth", "on" if same_login else "off")
        child(protocol, "SMTPLast", "off")
    outlook = Template(serialize(root))

    mobilesync = None
    if provider.activesync:
        root = default_ns_element(NS_RESPONSE, "Autodiscover")
        response = default_ns_element(NS_MOBILESYNC_RESPONSE, "Response", root)
        child(response, "Culture", "en:en")
        user = child(response, "User")
        child(user, "DisplayName", EMAILADDRESS)
        child(user, "EMailAddress", EMAILADDRESS)
        server_element = child(child(child(response, "Action"), "Settings"), "Server")
        child(server_element, "Type", "MobileSync")
        child(server_element, "Url", provider.activesync)
        child(server_element, "Name", provider.activesync)
        mobilesync = Template(serialize(root))
    return AutodiscoverDocuments(outlook, mobilesync)


def _protocol(account: etree._Element, server: Server) -> etree._Element:
    ssl, encryption = SSL_AND_ENCRYPTION[server.security]
    protocol = child(account, "Protocol")
    child(protocol, "Type", _TYPES[server.type])
    child(protocol, "Server", server.host)
    child(protocol, "Port", server.port)
    child(protocol, "DomainRequired", "off")
    child(protocol, "LoginName", server.username)
    child(protocol, "SPA", "on" if server.auth[0] in _SPA_METHODS else "off")
    child(protocol, "SSL", ssl)
    child(protocol, "Encryption", encryption)
    child(protocol, "AuthRequired", "on" if server.needs_login else "off")
    return protocol


def render(
    compiled: AutodiscoverDocuments,
    address: Address,
    response_schema: str,
    user: Mapping[str, str] | None = None,
) -> bytes:
    values = placeholder_values(address, address.domain)
    if user:
        values.update(user)
    if response_schema == NS_MOBILESYNC_RESPONSE:
        if compiled.mobilesync is None:
            raise SchemaNotOffered(f"ActiveSync is not offered for {address.domain}")
        return compiled.mobilesync.fill(values)
    return compiled.outlook.fill(values)


ERROR_MESSAGES = {600: "Invalid Request", 601: "Provider is not available", 500: "Unknown"}


def error_document(code: int, debug: str = "") -> bytes:
    """Exchange's error answer: Response/Error with ErrorCode, Message and DebugData."""
    root = default_ns_element(NS_RESPONSE, "Autodiscover")
    response = child(root, "Response")
    error = child(
        response,
        "Error",
        Time=time.strftime("%H:%M:%S", time.gmtime()),
        Id=str(random.randrange(1, 2**31)),
    )
    child(error, "ErrorCode", code)
    child(error, "Message", ERROR_MESSAGES.get(code, "Invalid Request"))
    child(error, "DebugData", debug)
    return serialize(root).encode("utf-8")


# ---------------------------------------------------------------------------
# Autodiscover v2 (JSON)


def render_json(protocol: str, provider: Provider, public_host: str) -> bytes:
    """The v2 answer for ``Protocol`` (compared case-insensitively)."""
    wanted = protocol.strip().lower()
    if wanted == "autodiscoverv1":
        answer = {
            "Protocol": "AutodiscoverV1",
            "Url": f"https://{public_host}/Autodiscover/Autodiscover.xml",
        }
    elif wanted == "activesync" and provider.activesync:
        answer = {"Protocol": "ActiveSync", "Url": provider.activesync}
    elif wanted == "activesync":
        raise InvalidProtocol(f"ActiveSync is not offered for this domain ({provider.id})")
    else:
        shown = protocol[:100] if protocol else "(none)"
        raise InvalidProtocol(
            f"The given protocol value '{shown}' is invalid. "
            "Supported values are 'AutodiscoverV1, ActiveSync'."
        )
    return json.dumps(answer).encode("utf-8")


def json_error(code: str, message: str) -> bytes:
    return json.dumps({"ErrorCode": code, "ErrorMessage": message}).encode("utf-8")
