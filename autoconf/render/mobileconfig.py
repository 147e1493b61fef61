"""Apple configuration profiles (SPEC §3), built with plistlib.

One ``com.apple.mail.managed`` payload for the first incoming (IMAP or POP3)
and the first SMTP server Apple Mail can log in to, plus CalDAV and CardDAV
payloads where configured. Identifiers and UUIDs are derived from the address
(uuid5), so downloading the profile again replaces the installed one instead
of adding a second account. Never a password.
"""

from __future__ import annotations

import plistlib
import secrets
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from autoconf.address import EMAILADDRESS, Address
from autoconf.errors import ClientCannotUse
from autoconf.model import Auth, DavService, Provider, Server, ServerType
from autoconf.render.template import PLACEHOLDERS, Template, placeholder_values

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


@dataclass(frozen=True, slots=True)
class Compiled:
    template: Template | None
    identifier: str
    slots: dict[str, str]  # part -> its marker in the template
    unusable: str | None = None


def _apple_auth(server: Server) -> str | None:
    return next((APPLE_AUTH[a] for a in server.auth if a in APPLE_AUTH), None)


def _first(servers: tuple[Server, ...], types: set[ServerType]) -> tuple[Server, str] | None:
    for server in servers:
        auth = _apple_auth(server)
        if server.type in types and auth is not None:
            return server, auth
    return None


def compile_provider(provider: Provider) -> Compiled:
    identifier = provider.mobileconfig.identifier if provider.mobileconfig else provider.id
    organization = provider.mobileconfig.organization if provider.mobileconfig else provider.name
    incoming = _first(provider.served_incoming, {ServerType.IMAP, ServerType.POP3})
    outgoing = _first(provider.served_outgoing, {ServerType.SMTP})
    if incoming is None or outgoing is None:
        kind = "incoming" if incoming is None else "outgoing"
        reason = (
            f"Apple Mail cannot use {provider.name}: no {kind} server offers a login it "
            "knows (password, CRAM-MD5 or NTLM)"
        )
        return Compiled(None, identifier, {}, reason)

    # Markers for the per-address UUIDs: random, so no text in a domain file
    # can look like one.
    token = secrets.token_hex(8)
    slots = {part: f"{token}-{part}" for part in _PARTS}
    (server_in, auth_in), (server_out, auth_out) = incoming, outgoing
    mail: dict[str, Any] = {
        "PayloadType": "com.apple.mail.managed",
        "PayloadVersion": 1,
        "PayloadIdentifier": f"{identifier}.{slots['profile']}.mail",
        "PayloadUUID": slots["mail"],
        "PayloadDisplayName": provider.name,
        "EmailAccountDescription": provider.name,
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
    for kind, dav in (("caldav", provider.calendar), ("carddav", provider.addressbook)):
        if dav is not None:
            content.append(_dav(kind, dav, provider.name, identifier, slots))
    profile = {
        "PayloadType": "Configuration",
        "PayloadVersion": 1,
        "PayloadIdentifier": f"{identifier}.{slots['profile']}",
        "PayloadUUID": slots["profile"],
        "PayloadDisplayName": provider.name,
        "PayloadDescription": f"Mail settings for {EMAILADDRESS}",
        "PayloadOrganization": organization,
        "PayloadRemovalDisallowed": False,
        "PayloadContent": content,
    }
    text = plistlib.dumps(profile, fmt=plistlib.FMT_XML, sort_keys=True).decode("utf-8")
    return Compiled(Template(text, (*PLACEHOLDERS, *slots.values())), identifier, slots)


def _dav(
    kind: str, dav: DavService, name: str, identifier: str, slots: dict[str, str]
) -> dict[str, Any]:
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
        "PayloadIdentifier": f"{identifier}.{slots['profile']}.{kind}",
        "PayloadUUID": slots[kind],
        "PayloadDisplayName": f"{name} ({'calendar' if kind == 'caldav' else 'contacts'})",
        f"{prefix}AccountDescription": name,
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
    base = uuid.uuid5(NAMESPACE, f"{identifier}\n{address.full.lower()}")
    return {part: str(uuid.uuid5(base, part)).upper() for part in _PARTS}


def render(compiled: Compiled, address: Address) -> bytes:
    """The unsigned profile for one address; ClientCannotUse when Apple Mail cannot."""
    if compiled.template is None:
        raise ClientCannotUse(compiled.unusable or "no profile")
    values = placeholder_values(address, address.domain)
    uuids = profile_uuids(compiled.identifier, address)
    for part, marker in compiled.slots.items():
        values[marker] = uuids[part]
    return compiled.template.fill(values)


def filename(domain: str) -> str:
    return f"{domain}.mobileconfig"
