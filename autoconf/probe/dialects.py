"""The protocol conversations: IMAP, POP3 and SMTP, up to what the server offers.

For each protocol the greeting, the capability (or CAPA, or EHLO) request read
into an :class:`~autoconf.probe.session.Offer`, and the STARTTLS/STLS command;
:data:`DIALECTS` names them by server type.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from autoconf.model import ServerType
from autoconf.probe.session import Mismatch, Offer, Session

MAX_LINES = 200


def _clip(text: str) -> str:
    return text if len(text) <= 60 else text[:60] + "…"


# --- IMAP ------------------------------------------------------------------


def _imap_greet(s: Session) -> None:
    line = s.readline()
    if not line.startswith(("* OK", "* PREAUTH")):
        raise Mismatch(f"not an IMAP greeting: {_clip(line)}")


def _imap_command(s: Session, command: str) -> list[str]:
    tag = s.tag()
    s.send(f"{tag} {command}")
    untagged: list[str] = []
    for _ in range(MAX_LINES):
        line = s.readline()
        if line.startswith(f"{tag} "):
            if line.split()[1:2] != ["OK"]:
                raise Mismatch(f"{command} refused: {_clip(line)}")
            return untagged
        untagged.append(line)
    raise Mismatch(f"no end to the answer to {command}")


def _imap_offer(s: Session) -> Offer:
    caps: list[str] = []
    for line in _imap_command(s, "CAPABILITY"):
        words = line.upper().split()
        if words[:2] == ["*", "CAPABILITY"]:
            caps += words[2:]
    mechanisms = tuple(c.removeprefix("AUTH=") for c in caps if c.startswith("AUTH="))
    return Offer(mechanisms, "LOGINDISABLED" not in caps, "STARTTLS" in caps)


def _imap_starttls(s: Session) -> None:
    _imap_command(s, "STARTTLS")


# --- POP3 ------------------------------------------------------------------


def _pop3_greet(s: Session) -> None:
    line = s.readline()
    if not line.startswith("+OK"):
        raise Mismatch(f"not a POP3 greeting: {_clip(line)}")


def _pop3_offer(s: Session) -> Offer:
    s.send("CAPA")
    if not s.readline().startswith("+OK"):
        return Offer((), True, False)  # no CAPA (RFC 1939 server): USER/PASS, no STLS
    caps: list[list[str]] = []
    for _ in range(MAX_LINES):
        line = s.readline()
        if line == ".":
            break
        caps.append(line.upper().split())
    else:
        raise Mismatch("no end to the answer to CAPA")
    mechanisms = tuple(m for words in caps if words[:1] == ["SASL"] for m in words[1:])
    return Offer(mechanisms, ["USER"] in caps, ["STLS"] in caps)


def _pop3_starttls(s: Session) -> None:
    s.send("STLS")
    line = s.readline()
    if not line.startswith("+OK"):
        raise Mismatch(f"STLS refused: {_clip(line)}")


# --- SMTP ------------------------------------------------------------------


def _smtp_reply(s: Session) -> tuple[int, list[str]]:
    lines: list[str] = []
    for _ in range(MAX_LINES):
        line = s.readline()
        if len(line) < 3 or not line[:3].isdigit() or line[3:4] not in ("", " ", "-"):
            raise Mismatch(f"not an SMTP reply: {_clip(line)}")
        lines.append(line[4:])
        if line[3:4] != "-":
            return int(line[:3]), lines
    raise Mismatch("no end to an SMTP reply")


def _smtp_greet(s: Session) -> None:
    code, lines = _smtp_reply(s)
    if code != 220:
        raise Mismatch(f"SMTP greeting {code}: {_clip(lines[0])}")


def _smtp_offer(s: Session) -> Offer:
    address = s.sock.getsockname()[0]
    s.send(f"EHLO [{'IPv6:' if ':' in address else ''}{address}]")
    code, lines = _smtp_reply(s)
    if code != 250:
        raise Mismatch(f"EHLO refused: {code} {_clip(lines[0])}")
    keywords = [line.upper().split() for line in lines[1:]]
    mechanisms: list[str] = []
    for words in keywords:
        if words and (words[0] == "AUTH" or words[0].startswith("AUTH=")):  # AUTH= is pre-RFC
            first = words[0][5:]
            mechanisms += [m for m in [first, *words[1:]] if m and m not in mechanisms]
    return Offer(tuple(mechanisms), False, ["STARTTLS"] in keywords)


def _smtp_starttls(s: Session) -> None:
    s.send("STARTTLS")
    code, lines = _smtp_reply(s)
    if code != 220:
        raise Mismatch(f"STARTTLS refused: {code} {_clip(lines[0])}")


class Dialect(NamedTuple):
    greet: Callable[[Session], None]
    offer: Callable[[Session], Offer]
    starttls: Callable[[Session], None]
    starttls_word: str
    goodbye: str
    no_login_command: str  # why password-cleartext has no fallback, for the message


DIALECTS = {
    ServerType.IMAP: Dialect(
        _imap_greet, _imap_offer, _imap_starttls, "STARTTLS", "p9 LOGOUT", " (LOGINDISABLED)"
    ),
    ServerType.POP3: Dialect(
        _pop3_greet, _pop3_offer, _pop3_starttls, "STLS", "QUIT", " (no USER)"
    ),
    ServerType.SMTP: Dialect(_smtp_greet, _smtp_offer, _smtp_starttls, "STARTTLS", "QUIT", ""),
}
