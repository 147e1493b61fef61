"""Live checks of the servers a domain file names (SPEC §4 ``probe``).

Every server in the file is probed, in parallel, each within its own time
budget: connect, TLS (implicit, or STARTTLS/STLS), the certificate verified for
the host name, then the capabilities read *after* TLS is up (servers hide AUTH
before) and compared with the ``auth`` values the file promises. The first
failure of a server is its result. Servers that the plaintext rule keeps from
clients are probed too, and marked "not served".

What each promised ``auth`` value requires among the mechanisms offered:

- ``password-cleartext``: SASL PLAIN or LOGIN (what clients send for it); on
  IMAP also the LOGIN command unless LOGINDISABLED, on POP3 also USER/PASS.
- ``password-encrypted``: CRAM-MD5, the one mechanism clients use for it
  (Thunderbird's "encrypted password", Apple's EmailAuthCRAMMD5); a server
  offering only SCRAM or DIGEST-MD5 fails those clients.
- ``NTLM``, ``GSSAPI``: the mechanism of that name; ``OAuth2``: XOAUTH2 or OAUTHBEARER.
- ``TLS-client-cert``: not checked; servers offer EXTERNAL only to a client that
  shows a certificate, and the probe has none.
- ``client-IP-address``, ``none``: no login, nothing to look for.
"""

from __future__ import annotations

import socket
import ssl
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from autoconf.address import EMAILDOMAIN
from autoconf.model import Auth, Provider, Security, Server, ServerType

MECHANISMS: dict[Auth, tuple[str, ...]] = {
    Auth.PASSWORD_CLEARTEXT: ("PLAIN", "LOGIN"),
    Auth.PASSWORD_ENCRYPTED: ("CRAM-MD5",),
    Auth.NTLM: ("NTLM",),
    Auth.GSSAPI: ("GSSAPI",),
    Auth.OAUTH2: ("XOAUTH2", "OAUTHBEARER"),
}
MAX_LINE = 16_384  # a capability line longer than this is no mail server's
MAX_LINES = 200
# OpenSSL's verify codes that mean "issuer unknown": a private CA, say.
_UNTRUSTED = {2, 18, 19, 20, 21}
_NAME_MISMATCH = {62, 64}  # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH


class Mismatch(Exception):
    """The server does not do what the file promises; the message says what."""


@dataclass(frozen=True, slots=True)
class Offer:
    mechanisms: tuple[str, ...]  # SASL mechanisms, upper case, in the server's order
    login_command: bool  # IMAP LOGIN without LOGINDISABLED, POP3 USER
    starttls: bool


@dataclass(frozen=True, slots=True)
class Result:
    server: Server
    host: str
    ok: bool
    detail: str


class Session:
    """One connection: lines in and out, every wait bounded by the server's deadline."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.buffer = bytearray()
        self.tags = 0
        self.sock = self._connect(host, port)

    def remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        return left

    def _connect(self, host: str, port: int) -> socket.socket:
        error: OSError = OSError(f"{host} has no address")
        for family, kind, proto, _, address in socket.getaddrinfo(
            host, port, 0, socket.SOCK_STREAM
        ):
            sock = socket.socket(family, kind, proto)
            try:
                sock.settimeout(self.remaining())
                sock.connect(address)
                return sock
            except OSError as exc:
                sock.close()
                error = exc
        raise error

    def send(self, line: str) -> None:
        self.sock.settimeout(self.remaining())
        self.sock.sendall(line.encode("ascii") + b"\r\n")

    def readline(self) -> str:
        while b"\n" not in self.buffer:
            if len(self.buffer) > MAX_LINE:
                raise Mismatch("the server sent a line longer than 16 KiB")
            self.sock.settimeout(self.remaining())
            chunk = self.sock.recv(4096)
            if not chunk:
                raise Mismatch("the server closed the connection")
            self.buffer += chunk
        line, _, rest = self.buffer.partition(b"\n")
        self.buffer = bytearray(rest)
        return line.decode("utf-8", "replace").rstrip("\r")

    def start_tls(self, context: ssl.SSLContext, host: str) -> None:
        self.sock.settimeout(self.remaining())
        self.buffer.clear()  # nothing sent before the handshake may count after it
        self.sock = context.wrap_socket(self.sock, server_hostname=host)

    def tag(self) -> str:
        self.tags += 1
        return f"p{self.tags}"

    def close(self, goodbye: str) -> None:
        try:
            self.sock.settimeout(0.5)
            self.sock.sendall(goodbye.encode("ascii") + b"\r\n")
        except OSError:
            pass
        self.sock.close()


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


# --- one server --------------------------------------------------------------


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return (exc.reason or str(exc)).lower().replace("_", " ")
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host ({exc.strerror})"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[:1].lower() + exc.strerror[1:]
    return str(exc) or type(exc).__name__


class Opened(NamedTuple):
    tls: str  # the TLS version, or "no TLS"
    offer: Offer  # read after TLS is up: servers hide AUTH before
    cert: dict[str, Any]  # the peer's certificate, as ssl.getpeercert() gives it


def _open(server: Server, host: str, context: ssl.SSLContext, timeout: float) -> Opened:
    """Connect, bring TLS up as configured, and read what the server offers."""
    dialect = DIALECTS[server.type]
    step, s = "connect", None
    try:
        s = Session(host, server.port, timeout)
        if server.security is Security.SSL:
            step = "TLS handshake"
            s.start_tls(context, host)
        step = "greeting"
        dialect.greet(s)
        step = "capabilities"
        offer = dialect.offer(s)
        if server.security is Security.STARTTLS:
            if not offer.starttls:
                raise Mismatch(f"{dialect.starttls_word} not offered")
            step = dialect.starttls_word
            dialect.starttls(s)
            step = "TLS handshake"
            s.start_tls(context, host)
            step = "capabilities after TLS"
            offer = dialect.offer(s)
        if isinstance(s.sock, ssl.SSLSocket):
            return Opened(s.sock.version() or "TLS", offer, dict(s.sock.getpeercert() or {}))
        return Opened("no TLS", offer, {})
    except (Mismatch, ssl.SSLCertVerificationError):
        raise
    except TimeoutError:
        raise Mismatch(f"{step}: no answer within {timeout:g} s") from None
    except Exception as exc:  # any network or protocol trouble is a result, not a crash
        raise Mismatch(f"{step}: {_reason(exc)}") from None
    finally:
        if s is not None:
            s.close(dialect.goodbye)


def _names(cert: dict[str, Any]) -> str:
    names = [str(value) for _, value in cert.get("subjectAltName", ())]
    if not names:  # no SAN: the subject's common name, for the message only
        names = [str(v) for rdn in cert.get("subject", ()) for k, v in rdn if k == "commonName"]
    return ", ".join(names) or "no name"


def _auth_problems(server: Server, offer: Offer) -> list[str]:
    problems = []
    offered = " ".join(offer.mechanisms) or "none"
    for auth in server.auth:
        wanted = MECHANISMS.get(auth)
        if not wanted or any(m in offer.mechanisms for m in wanted):
            continue
        note = ""
        if auth is Auth.PASSWORD_CLEARTEXT and server.type is not ServerType.SMTP:
            if offer.login_command:
                continue
            note = DIALECTS[server.type].no_login_command
        problems.append(
            f"{auth.value}: AUTH {' or '.join(wanted)} missing{note}; offered: {offered}"
        )
    return problems


@dataclass(frozen=True, slots=True)
class Contexts:
    verify: ssl.SSLContext  # chain and host name: the verdict
    names: ssl.SSLContext  # chain only: to read the names of a certificate for another host
    ca_file: Path | None


def probe_server(server: Server, host: str, contexts: Contexts, timeout: float) -> Result:
    """Check one server; every failure, expected or not, becomes the result's detail."""
    try:
        tls, offer, _ = _open(server, host, contexts.verify, timeout)
    except ssl.SSLCertVerificationError as exc:
        return Result(
            server, host, False, _certificate_problem(exc, server, host, contexts, timeout)
        )
    except Mismatch as exc:
        return Result(server, host, False, str(exc))
    except Exception as exc:  # a bug of ours must still not hide the other servers
        return Result(server, host, False, f"unexpected error: {exc!r}")
    problems = _auth_problems(server, offer)
    if problems:
        return Result(server, host, False, "; ".join(problems))
    parts = [tls] + (["certificate valid"] if server.tls else [])
    parts.append(f"AUTH {' '.join(offer.mechanisms) or 'none'}")
    if Auth.TLS_CLIENT_CERT in server.auth:
        parts.append("TLS-client-cert not checked")
    return Result(server, host, True, ", ".join(parts))


def _certificate_problem(
    exc: ssl.SSLCertVerificationError, server: Server, host: str, contexts: Contexts, timeout: float
) -> str:
    if exc.verify_code in _NAME_MISMATCH:
        try:  # a second connection, trusting the chain only, to read the names
            cert = _open(server, host, contexts.names, timeout).cert
        except Exception:  # the verdict stands; only the names stay unknown
            return f"certificate is not valid for {host}"
        return f"certificate is for {_names(cert)}, not {host}"
    if exc.verify_code in _UNTRUSTED:
        hint = "" if contexts.ca_file else " (a private CA? pass --ca-file)"
        return f"certificate not trusted: {exc.verify_message}{hint}"
    return f"certificate invalid: {exc.verify_message}"


# --- the command ---------------------------------------------------------------


def make_contexts(ca_file: Path | None) -> Contexts:
    """Client contexts trusting the system store, plus ``ca_file`` when given."""
    verify = ssl.create_default_context()
    names = ssl.create_default_context()
    names.check_hostname = False
    if ca_file is not None:
        verify.load_verify_locations(cafile=str(ca_file))
        names.load_verify_locations(cafile=str(ca_file))
    return Contexts(verify, names, ca_file)


def probe_provider(
    provider: Provider, domain: str, contexts: Contexts, timeout: float
) -> list[Result]:
    """Probe every server of the file at once; results in the file's order."""
    servers = provider.incoming + provider.outgoing
    hosts = [s.host.replace(EMAILDOMAIN, domain) for s in servers]
    pool = ThreadPoolExecutor(max_workers=min(16, len(servers)))
    try:
        futures = [
            pool.submit(probe_server, server, host, contexts, timeout)
            for server, host in zip(servers, hosts, strict=True)
        ]
        # Each probe keeps its own deadline (twice for a certificate's names); this
        # only guards against a name lookup that hangs, which no timeout bounds.
        wait(futures, timeout=timeout * 2 + 5)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return [
        future.result() if future.done() else Result(server, host, False, "no answer in time")
        for future, server, host in zip(futures, servers, hosts, strict=True)
    ]


def format_table(results: list[Result], served: tuple[Server, ...]) -> str:
    header = ("server", "port", "security", "result", "detail")
    rows = [header]
    for r in results:
        detail = r.detail if r.server in served else f"{r.detail} [not served: plaintext rule]"
        result = "ok" if r.ok else "FAIL"
        server = f"{r.server.type.value} {r.host}"
        rows.append((server, str(r.server.port), r.server.security.value, result, detail))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = [
        "  ".join([*(c.ljust(w) for c, w in zip(row, widths, strict=False)), row[-1]])
        for row in rows
    ]
    failed = sum(not r.ok for r in results)
    lines.append(f"{len(results)} servers: {len(results) - failed} ok, {failed} failed")
    return "\n".join(lines)


def probe_main(provider: Provider, domain: str, *, ca_file: Path | None, timeout: float) -> int:
    """Print the table; 0 when every server does what the file says, 1 otherwise."""
    try:
        contexts = make_contexts(ca_file)
    except (OSError, ssl.SSLError) as exc:
        print(f"{ca_file}: cannot load as a CA file ({_reason(exc)})", file=sys.stderr)
        return 2  # usage, as cli.Exit.USAGE
    results = probe_provider(provider, domain, contexts, timeout)
    print(format_table(results, provider.served_incoming + provider.served_outgoing))
    return 0 if all(r.ok for r in results) else 1
