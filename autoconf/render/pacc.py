"""PACC (draft-ietf-mailmaint-pacc-03): the JSON document at
``https://ua-auto-config.<domain>/.well-known/user-agent-configuration.json`` and
the DNS TXT record that pins its bytes (docs/http.md#pacc).

The draft allows only what a client can use without a choice: IMAP, POP3 and
submission on their implicit-TLS ports (993, 995, 465), logging in with the
whole address; JMAP, CalDAV and CardDAV by an https URL. A server of the file
that the draft cannot carry is left out, and :func:`left_out` says why (``check``
prints it). The body is a function of the file and the domain alone, its keys
sorted and without white space, so the digest ``dns`` prints always matches.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass

from autoconf.model import Auth, Provider, Security, Server, ServerType
from autoconf.placeholders import EMAILADDRESS, EMAILDOMAIN, PLACEHOLDER_LIKE, fill

DRAFT = "draft-ietf-mailmaint-pacc-03"
CONTENT_TYPE = "application/json"
HOST_PREFIX = "ua-auto-config."
TXT_PREFIX = "_ua-auto-config."
# The draft's fixed ports: implicit TLS only. -03 renamed "smtp" to "submit".
FIXED = {
    ServerType.IMAP: ("imap", 993),
    ServerType.POP3: ("pop3", 995),
    ServerType.SMTP: ("submit", 465),
}
_PASSWORDS = frozenset({Auth.PASSWORD_CLEARTEXT, Auth.PASSWORD_ENCRYPTED})


@dataclass(frozen=True, slots=True)
class LeftOut:
    """A kind of server the file has and the document cannot carry, and why."""

    name: str  # the PACC protocol name ("imap", "submit", "caldav"…)
    why: str


def _why_not(server: Server, port: int) -> str | None:
    if server.security is not Security.SSL:
        return f"{server.security.value}, not implicit TLS (ssl)"
    if server.port != port:
        return f"port {server.port}, not {port}"
    if server.username != EMAILADDRESS:
        return f"user name {server.username!r}: PACC clients log in with the address"
    if not set(server.auth) & (_PASSWORDS | {Auth.OAUTH2}):
        return f"authentication {', '.join(a.value for a in server.auth)}"
    return None


def _servers(provider: Provider) -> tuple[dict[str, Server], list[LeftOut]]:
    """The first server of each kind PACC can carry; why the others' kinds are left out."""
    chosen: dict[str, Server] = {}
    reasons: dict[str, list[str]] = {}
    for server in (*provider.served_incoming, *provider.served_outgoing):
        name, port = FIXED[server.type]
        if name in chosen:
            continue
        why = _why_not(server, port)
        if why is None:
            chosen[name] = server
        else:
            reasons.setdefault(name, []).append(f"{server.host}: {why}")
    left = [
        LeftOut(name, "no server PACC allows (" + "; ".join(whys) + ")")
        for name, whys in reasons.items()
        if name not in chosen
    ]
    return chosen, left


def _urls(provider: Provider) -> tuple[dict[str, str], list[LeftOut]]:
    urls: dict[str, str] = {}
    left: list[LeftOut] = []
    for name, url in (
        ("jmap", provider.jmap),
        ("caldav", provider.calendar.url if provider.calendar else None),
        ("carddav", provider.addressbook.url if provider.addressbook else None),
    ):
        if url is None:
            continue
        if not url.startswith("https://"):
            left.append(LeftOut(name, f"{url}: PACC takes https URLs only"))
        elif PLACEHOLDER_LIKE.search(url.replace(EMAILDOMAIN, "")):
            left.append(
                LeftOut(
                    name,
                    f"{url}: it names the user, and a PACC document is the same for every user",
                )
            )
        else:
            urls[name] = url
    return urls, left


def left_out(provider: Provider) -> list[LeftOut]:
    """What of the file the PACC document leaves out, and why (for ``check``)."""
    return _servers(provider)[1] + _urls(provider)[1]


def document(provider: Provider, domain: str) -> dict[str, object] | None:
    """The PACC document for ``domain`` as data; None when it would carry no protocol."""
    values = {EMAILDOMAIN: domain}
    servers, _ = _servers(provider)
    urls, _ = _urls(provider)
    protocols: dict[str, object] = {
        name: {"host": fill(server.host, values)} for name, server in servers.items()
    }
    protocols |= {name: {"url": fill(url, values)} for name, url in urls.items()}
    if not protocols:
        return None
    authentication: dict[str, object] = {}
    if provider.oauth2 is not None:
        authentication["oauth-public"] = {"issuer": provider.oauth2.issuer_url}
    if _uses(servers.values(), _PASSWORDS) or (urls and provider.oauth2 is None):
        authentication["password"] = True
    info: dict[str, object] = {
        "provider": {
            "name": fill(provider.name, values),
            "shortName": fill(provider.short_name, values),
        }
    }
    if provider.documentation:
        info["help"] = {"documentation": fill(provider.documentation[0].url, values)}
    return {"protocols": protocols, "authentication": authentication, "info": info}


def _uses(servers: Iterable[Server], methods: frozenset[Auth]) -> bool:
    return any(set(server.auth) & methods for server in servers)


def render(provider: Provider, domain: str) -> bytes | None:
    """The exact bytes served, and digested: sorted keys, no white space, UTF-8."""
    data = document(provider, domain)
    if data is None:
        return None
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def digest(body: bytes) -> str:
    """The TXT record's data for a body: ``v=UAAC1; a=sha256; d=<base64 SHA-256>``."""
    return f"v=UAAC1; a=sha256; d={base64.b64encode(hashlib.sha256(body).digest()).decode()}"
