"""The servers of an ISPDB document: <incomingServer> and <outgoingServer>.

Each becomes one ``incoming`` or ``outgoing`` entry (type, host, port, security,
auth, username, POP3 options) or is left out with a note. Also
:func:`leave_out_unknown`, which notes the children our format has no key for.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from lxml import etree

from autoconf.ispdb.document import Data, Notes, child_text, element_text, elements
from autoconf.ispdb.values import checked_host, checked_template
from autoconf.model import OUTGOING_ONLY_AUTH, Auth, Security
from autoconf.placeholders import EMAILADDRESS

INCOMING_TYPES = ("imap", "pop3")
OUTGOING_TYPES = ("smtp",)
SOCKET_TYPES = {"SSL": Security.SSL, "STARTTLS": Security.STARTTLS, "plain": Security.NONE}
# Thunderbird's own names, plus the names of its first file format.
AUTH_NAMES: dict[str, Auth] = {a.value.lower(): a for a in Auth} | {
    "plain": Auth.PASSWORD_CLEARTEXT,
    "secure": Auth.PASSWORD_ENCRYPTED,
}
POP3_FLAGS = {
    "leaveMessagesOnServer": "leave_messages_on_server",
    "downloadOnBiff": "download_on_biff",
}
POP3_DAYS = ("daysToLeaveMessagesOnServer", "days_to_leave_messages_on_server", 1, 36500)


def _server_children(kind: str) -> tuple[str, ...]:
    common = ("hostname", "port", "socketType", "username", "authentication")
    return (*common, "pop3") if kind == "pop3" else common


def leave_out_unknown(
    element: etree._Element, where: str, known: Sequence[str], notes: Notes
) -> None:
    for child in elements(element):
        if child.tag == "password":
            notes.left_out(where, child, "a domain file never carries a password")
        elif child.tag not in known:
            notes.left_out(where, child, "our format has no key for it")


def import_servers(
    provider: etree._Element, tag: str, notes: Notes, fallback_username: str | None
) -> list[Data]:
    servers = []
    for index, element in enumerate(provider.findall(tag), start=1):
        server = _server(element, f"{tag}[{index}]", notes, fallback_username)
        if server is not None:
            servers.append(server)
    return servers


def _server(
    element: etree._Element, where: str, notes: Notes, fallback_username: str | None
) -> Data | None:
    outgoing = element.tag == "outgoingServer"
    served = OUTGOING_TYPES if outgoing else INCOMING_TYPES
    raw_type = (element.get("type") or "").strip()
    kind = raw_type.lower()
    if kind not in served:
        only = " and ".join(served)
        notes.add(where, f"server type {raw_type!r} is not served (only {only}); left out")
        return None
    leave_out_unknown(element, where, _server_children(kind), notes)
    host = _server_host(element, where, notes)
    port = _port(element, where, notes)
    security = _security(element, where, notes)
    username = _username(element, where, notes, fallback_username)
    if host is None or port is None or security is None or username is None:
        return None
    server: Data = {"type": kind, "host": host, "port": port, "security": security}
    methods = _auth(element, where, outgoing, notes)
    server["auth"] = methods[0] if len(methods) == 1 else methods
    server["username"] = username
    pop3 = _pop3(element, where, notes) if kind == "pop3" else None
    if pop3:
        server["pop3"] = pop3
    return server


def _server_host(element: etree._Element, where: str, notes: Notes) -> str | None:
    raw = child_text(element, "hostname", where, notes)
    if raw is None:
        notes.add(where, "no <hostname>; server left out")
        return None
    return checked_host(raw, where, notes)


def _port(element: etree._Element, where: str, notes: Notes) -> int | None:
    raw = child_text(element, "port", where, notes)
    if raw is None or not re.fullmatch(r"[0-9]{1,5}", raw) or not 1 <= int(raw) <= 65535:
        notes.add(where, f"port {raw!r} is not a port number (1 to 65535); server left out")
        return None
    return int(raw)


def _security(element: etree._Element, where: str, notes: Notes) -> str | None:
    raw = child_text(element, "socketType", where, notes) or ""
    by_lower = {name.lower(): (name, security) for name, security in SOCKET_TYPES.items()}
    if raw.lower() not in by_lower:
        known = ", ".join(SOCKET_TYPES)
        notes.add(where, f"socketType {raw!r} is not one of {known}; server left out")
        return None
    name, security = by_lower[raw.lower()]
    if name != raw:
        notes.add(where, f"socketType {raw!r} read as {name!r}")
    return security.value


def _username(
    element: etree._Element, where: str, notes: Notes, fallback: str | None
) -> str | None:
    raw = child_text(element, "username", where, notes)
    if raw is None:
        # Thunderbird's account setup logs in to SMTP with the incoming login
        # unless told otherwise; our own default is the whole address.
        value = fallback or EMAILADDRESS
        why = "the first incoming server's" if fallback else "our default"
        notes.add(where, f"no <username>: {value!r} ({why}) is used")
        return value
    username, problem = checked_template(raw, where, notes)
    if username is None:
        notes.add(where, f"username: {problem}; server left out")
    return username


def _auth(element: etree._Element, where: str, outgoing: bool, notes: Notes) -> list[str]:
    """Our names for the server's methods, in its order; never empty."""
    methods: list[str] = []
    given = [element_text(e) for e in element.findall("authentication")]
    for raw in given:
        method = AUTH_NAMES.get(raw.lower())
        if method is None:
            notes.add(where, f"authentication {raw!r} is not one we know; left out")
        elif method in OUTGOING_ONLY_AUTH and not outgoing:
            notes.add(where, f"authentication {raw!r} is only for outgoing servers; left out")
        elif method.value in methods:
            notes.add(where, f"authentication {raw!r} is listed twice; left out")
        else:
            if method.value != raw:
                notes.add(where, f"authentication {raw!r} written as {method.value!r}")
            methods.append(method.value)
    if not methods:
        # The server is still worth having: password-cleartext (inside TLS) is
        # what nearly every server takes, and it is our format's default.
        default = Auth.PASSWORD_CLEARTEXT.value
        what = "none of its <authentication> values is usable" if given else "no <authentication>"
        notes.add(where, f"{what}: {default} is used")
        methods.append(default)
    return methods


def _pop3(element: etree._Element, where: str, notes: Notes) -> Data:
    options: Data = {}
    for block in element.findall("pop3"):
        for child in elements(block):
            _pop3_option(child, f"{where}.pop3", options, notes)
    return options


def _pop3_option(child: etree._Element, where: str, options: Data, notes: Notes) -> None:
    raw = element_text(child)
    days_tag, days_key, low, high = POP3_DAYS
    if child.tag in POP3_FLAGS and raw.lower() in ("true", "false"):
        options.setdefault(POP3_FLAGS[child.tag], raw.lower() == "true")
    elif child.tag == days_tag and raw.isdigit() and low <= int(raw) <= high:
        options.setdefault(days_key, int(raw))
    elif child.tag in POP3_FLAGS or child.tag == days_tag:
        notes.left_out(where, child, f"{raw!r} is not a valid value")
    else:
        notes.left_out(where, child, "our format has no key for it")
