"""Apple configuration profiles (docs/http.md#apple-configuration-profile), built with plistlib.

One ``com.apple.mail.managed`` payload for the first incoming (IMAP or POP3)
and the first SMTP server Apple Mail can log in to, plus CalDAV and CardDAV
payloads where configured. Identifiers and UUIDs are derived from the address
(uuid5), so downloading the profile again replaces the installed one instead
of adding a second account. Never a password.
"""

from __future__ import annotations

import hashlib
import plistlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from autoconf.address import Address
from autoconf.errors import ClientCannotUse
from autoconf.model import Auth, DavService, Provider, Server, ServerType
from autoconf.placeholders import EMAILADDRESS
from autoconf.render.identity import (
    IDENTIFIER,
    NAME,
    ORGANIZATION,
    identity_values,
    mobileconfig_of,
    shape_of,
)
from autoconf.render.template import Template, placeholder_values, slot

CONTENT_TYPE = "application/x-apple-aspen-config"
# How Apple Mail logs in, for each method it knows; the first a server offers wins.
APPLE_AUTH = {
    Auth.PASSWORD_CLEARTEXT: "EmailAuthPassword",
    Auth.PASSWORD_ENCRYPTED: "EmailAuthCRAMMD5",
    Auth.NTLM: "EmailAuthNTLM",
    Auth.NONE: "EmailAuthNone",
    Auth.CLIENT_IP_ADDRESS: "EmailAuthNone",
}
_ACCOUNT_TYPES = {ServerType.IMAP: "EmailTypeIMAP", ServerType.POP3: "EmailTypePOP"}
# The namespace of every profile UUID this service hands out.
NAMESPACE = uuid.UUID("6f1c8f0e-7a55-5b0c-9a53-6d61696c6163")
_PARTS = ("profile", "mail", "caldav", "carddav")


# Where the per-address UUIDs go.
_UUID_SLOTS = {part: slot(f"uuid_{part}") for part in _PARTS}


@dataclass(frozen=True, slots=True)
class Shape:
    """The profile of a shape, or which side Apple Mail cannot log in to."""

    template: Template | None
    missing: str | None = None  # "incoming" or "outgoing"


@dataclass(frozen=True, slots=True)
class ProfileDocument:
    shape: Shape  # shared by providers of one shape
    identity: Mapping[str, str]
    identifier: str  # raw, for the UUIDs
    unusable: str | None = None  # why Apple Mail cannot use this provider


def _apple_auth(server: Server) -> str | None:
    return next((APPLE_AUTH[a] for a in server.auth if a in APPLE_AUTH), None)


def _first(servers: tuple[Server, ...], types: set[ServerType]) -> tuple[Server, str] | None:
    for server in servers:
        auth = _apple_auth(server)
        if server.type in types and auth is not None:
            return server, auth
    return None


def compile_provider(provider: Provider) -> ProfileDocument:
    """Everything but the address, for one provider (the registry shares shapes instead)."""
    return with_identity(compile_shape(shape_of(provider)), provider, identity_values(provider, ""))


def with_identity(shape: Shape, provider: Provider, identity: Mapping[str, str]) -> ProfileDocument:
    unusable = None
    if shape.missing:
        unusable = (
            f"Apple Mail cannot use {provider.name}: no {shape.missing} server offers a "
            "login it knows (password, CRAM-MD5 or NTLM)"
        )
    return ProfileDocument(shape, identity, mobileconfig_of(provider).identifier, unusable)


def compile_shape(shape: Provider) -> Shape:
    incoming = _first(shape.served_incoming, {ServerType.IMAP, ServerType.POP3})
    outgoing = _first(shape.served_outgoing, {ServerType.SMTP})
    if incoming is None or outgoing is None:
        return Shape(None, "incoming" if incoming is None else "outgoing")
    (server_in, auth_in), (server_out, auth_out) = incoming, outgoing
    mail: dict[str, Any] = {
        "PayloadType": "com.apple.mail.managed",
        "PayloadVersion": 1,
        "PayloadIdentifier": f"{IDENTIFIER}.{_UUID_SLOTS['profile']}.mail",
        "PayloadUUID": _UUID_SLOTS["mail"],
        "PayloadDisplayName": NAME,
        "EmailAccountDescription": NAME,
        "EmailAccountType": _ACCOUNT_TYPES[server_in.type],
        "EmailAddress": EMAILADDRESS,
        "IncomingMailServerHostName": server_in.host,
        "IncomingMailServerPortNumber": server_in.port,
        "IncomingMailServerUseSSL": server_in.tls,
        "IncomingMailServerUsername": server_in.username,
        "IncomingMailServerAuthentication": auth_in,
        "OutgoingMailServerHostName": server_out.host,
        "OutgoingMailServerPortNumber": server_out.port,
        "OutgoingMailServerUseSSL": server_out.tls,
        "OutgoingMailServerUsername": server_out.username,
        "OutgoingMailServerAuthentication": auth_out,
        "OutgoingPasswordSameAsIncomingPassword": server_out.username == server_in.username,
        "PreventMove": False,
        "PreventAppSheet": False,
        "SMIMEEnabled": False,
        "allowMailDrop": True,
    }
    content = [mail]
    for kind, dav in (("caldav", shape.calendar), ("carddav", shape.addressbook)):
        if dav is not None:
            content.append(_dav(kind, dav))
    profile = {
        "PayloadType": "Configuration",
        "PayloadVersion": 1,
        "PayloadIdentifier": f"{IDENTIFIER}.{_UUID_SLOTS['profile']}",
        "PayloadUUID": _UUID_SLOTS["profile"],
        "PayloadDisplayName": NAME,
        "PayloadDescription": f"Mail settings for {EMAILADDRESS}",
        "PayloadOrganization": ORGANIZATION,
        "PayloadRemovalDisallowed": False,
        "PayloadContent": content,
    }
    return Shape(Template(plistlib.dumps(profile, sort_keys=True).decode("utf-8")))


def _dav(kind: str, dav: DavService) -> dict[str, Any]:
    """CalDAV or CardDAV: Apple wants host, port and SSL apart, and the URL as principal."""
    parts = urlsplit(dav.url)
    # Not parts.hostname: it lower-cases, and would turn %EMAILDOMAIN% into a
    # placeholder no one fills. User information and port are dropped here.
    hostinfo = parts.netloc.rpartition("@")[2]
    host = hostinfo[1:].partition("]")[0] if hostinfo.startswith("[") else hostinfo.split(":")[0]
    scheme, port = parts.scheme, parts.port  # the URL was validated at load
    prefix = "CalDAV" if kind == "caldav" else "CardDAV"
    return {
        "PayloadType": f"com.apple.{kind}.account",
        "PayloadVersion": 1,
        "PayloadIdentifier": f"{IDENTIFIER}.{_UUID_SLOTS['profile']}.{kind}",
        "PayloadUUID": _UUID_SLOTS[kind],
        "PayloadDisplayName": f"{NAME} ({'calendar' if kind == 'caldav' else 'contacts'})",
        f"{prefix}AccountDescription": NAME,
        f"{prefix}HostName": host,
        f"{prefix}Port": port or (443 if scheme == "https" else 80),
        f"{prefix}PrincipalURL": dav.url,
        f"{prefix}UseSSL": scheme == "https",
        f"{prefix}Username": dav.username,
    }


def profile_uuids(identifier: str, address: Address) -> dict[str, str]:
    """The same UUIDs for the same address on every download; others for others.

    Mailbox names are compared without regard to case here, so that typing
    ``Alice@`` or ``alice@`` replaces the same profile.
    """
    base = _uuid5(NAMESPACE.bytes, f"{identifier}\n{address.full.lower()}")
    return {part: _text(_uuid5(base, part)) for part in _PARTS}


def _uuid5(namespace: bytes, name: str) -> bytes:
    """RFC 9562 UUIDv5, as uuid.uuid5 makes it, without building UUID objects (a
    profile needs five of them on every download)."""
    raw = bytearray(hashlib.sha1(namespace + name.encode("utf-8")).digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x50
    raw[8] = (raw[8] & 0x3F) | 0x80
    return bytes(raw)


def _text(raw: bytes) -> str:
    h = raw.hex().upper()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def render(
    compiled: ProfileDocument, address: Address, user: Mapping[str, str] | None = None
) -> bytes:
    """The unsigned profile for one address; ClientCannotUse when Apple Mail cannot.
    ``user``: the per-user slots' values (:func:`autoconf.render.user.user_values`)."""
    template = compiled.shape.template
    if template is None:
        raise ClientCannotUse(compiled.unusable or "no profile")
    values = {**compiled.identity, **placeholder_values(address, address.domain)}
    if user:
        values.update(user)
    uuids = profile_uuids(compiled.identifier, address)
    for part, marker in _UUID_SLOTS.items():
        values[marker] = uuids[part]
    return template.fill(values)


def filename(domain: str) -> str:
    return f"{domain}.mobileconfig"
