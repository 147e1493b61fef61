"""What three strict clients read of an autoconfig document, by their own rules.

Each reader follows one client's parser as its source has it (docs/clients.md):
Thunderbird 153's ``readFromXML.sys.mjs``, Thunderbird for Android's
``RealAutoconfigParser.kt`` and Delta Chat core's ``auto_mozilla.rs``. They
return the servers the client would take, in its order, or the reason it
rejects the whole document; tests compare what they read of two documents.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from lxml import etree

from autoconf.address import InvalidDomain, normalize_domain

Servers = dict[str, Any]


def _text(element: etree._Element | None) -> str | None:
    if element is None:
        return None
    return (element.text or "").strip()


def _valid_host(text: str | None) -> bool:
    if not text:
        return False
    try:
        normalize_domain(text)
    except InvalidDomain:
        return False
    return True


# -- Thunderbird 153 desktop (readFromXML.sys.mjs) ---------------------------------

_TB_INCOMING = ("pop3", "imap", "nntp", "exchange", "ews", "owa")
_TB_SOCKET = {"plain": "plain", "SSL": "SSL", "STARTTLS": "STARTTLS"}
_TB_AUTH_IN = (
    "password-cleartext",
    "plain",
    "password-encrypted",
    "secure",
    "GSSAPI",
    "NTLM",
)
_TB_AUTH_OUT = (*_TB_AUTH_IN, "none", "client-IP-address", "smtp-after-pop")


def _tb_auth(server: etree._Element, allowed: tuple[str, ...]) -> str | None:
    # OAuth2 only for providers built into Thunderbird, which no test domain is;
    # a value with attributes (system="http") is no string to its sanitizer.
    for element in server.findall("authentication"):
        if not element.attrib and _text(element) in allowed:
            return _text(element)
    return None


def thunderbird(body: bytes) -> Servers:
    root = etree.fromstring(body)
    provider = root.find("emailProvider")
    if provider is None:
        return {"rejected": "no emailProvider"}
    domains = [d for d in provider.findall("domain") if not d.attrib and _valid_host(_text(d))]
    if not domains:
        return {"rejected": "no domain"}
    incoming = []
    for server in provider.findall("incomingServer"):
        kind = server.get("type")
        if kind not in _TB_INCOMING:
            continue
        host = _text(server.find("hostname"))
        socket = None
        url = _text(server.find("url"))
        if url:
            parts = urlsplit(url)
            host = parts.hostname
            socket = {"https": "SSL", "http": "plain"}.get(parts.scheme)
        for element in server.findall("socketType"):
            if _text(element) in _TB_SOCKET:
                socket = _TB_SOCKET[_text(element) or ""]
                break
        username = _text(server.find("username"))
        auth = _tb_auth(server, _TB_AUTH_IN)
        if not host or socket is None or username is None or auth is None:
            continue
        incoming.append((kind, host, _text(server.find("port")), socket, auth, username, url))
    outgoing = []
    for server in provider.findall("outgoingServer"):
        if server.get("type") != "smtp":
            continue
        host = _text(server.find("hostname"))
        port = _text(server.find("port"))
        sockets = [_text(e) for e in server.findall("socketType") if _text(e) in _TB_SOCKET]
        auth = _tb_auth(server, _TB_AUTH_OUT)
        username = _text(server.find("username"))
        if not _valid_host(host) or not port or not sockets or auth is None:
            continue
        if username is None and auth in _TB_AUTH_IN:
            continue
        outgoing.append(("smtp", host, port, sockets[0], auth, username))
    if not incoming:
        return {"rejected": "no incoming server"}
    if not outgoing:
        return {"rejected": "no outgoing server"}
    return {"incoming": incoming, "outgoing": outgoing}


# -- Thunderbird for Android / K-9 Mail (RealAutoconfigParser.kt) -------------------

_ANDROID_AUTH = ("OAuth2", "password-cleartext", "password-encrypted")


def _android_server(server: etree._Element) -> tuple[Any, ...] | str:
    host = _text(server.find("hostname"))
    port = _text(server.find("port"))
    username = _text(server.find("username"))
    socket = _text(server.find("socketType"))
    auth = [_text(a) for a in server.findall("authentication") if _text(a) in _ANDROID_AUTH]
    if not _valid_host(host):
        return f"hostname {host!r}"
    if port is None or not port.isdigit():
        return f"port {port!r}"
    if username is None:
        return "no username"
    if not auth:
        return "no usable authentication"
    if socket not in ("SSL", "STARTTLS"):
        return f"socketType {socket!r}"
    return (host, int(port), socket, tuple(auth), username)


def thunderbird_android(body: bytes) -> Servers:
    root = etree.fromstring(body)
    provider = root.find("emailProvider")
    if provider is None:
        return {"rejected": "no emailProvider"}
    if not _valid_host(provider.get("id")):
        return {"rejected": "emailProvider id"}
    if not any(_valid_host(_text(d)) for d in provider.findall("domain")):
        return {"rejected": "no valid domain"}
    found: dict[str, Any] = {}
    for server in provider:
        wanted = {"incomingServer": "imap", "outgoingServer": "smtp"}.get(str(server.tag))
        if server.tag == "oAuth2":
            if server.find("authURL") is None or server.find("tokenURL") is None:
                return {"rejected": "oAuth2 without authURL or tokenURL"}
        if wanted is None or server.get("type") != wanted:
            continue
        read = _android_server(server)
        if isinstance(read, str):
            return {"rejected": f"{wanted}: {read}"}
        found.setdefault(wanted, read)
    if "imap" not in found or "smtp" not in found:
        return {"rejected": "no IMAP or no SMTP server"}
    return found


# -- Delta Chat core (auto_mozilla.rs) ----------------------------------------------


def deltachat(body: bytes) -> Servers:
    root = etree.fromstring(body)
    servers = []
    for server in root.iter():
        if str(server.tag).lower() not in ("incomingserver", "outgoingserver"):
            continue
        values: dict[str, str] = {}
        for element in server.iterdescendants():
            name = str(element.tag).lower()
            if name in ("hostname", "port", "sockettype", "username") and element.text:
                values[name] = element.text.strip()
        kind = (server.get("type") or "").lower()
        if kind in ("imap", "smtp") and {"hostname", "port", "username"} <= set(values):
            servers.append((kind, values["hostname"], values["port"], values.get("sockettype")))
    return {"servers": servers}


READERS = {"thunderbird": thunderbird, "android": thunderbird_android, "deltachat": deltachat}
