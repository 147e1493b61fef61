"""Checking one server: :func:`probe_server` and its :class:`Result`.

Connect, bring TLS up as configured (:class:`Contexts`), verify the certificate
for the host name, then compare the mechanisms offered after TLS with the
``auth`` values the file promises; a certificate that fails is explained.

What each promised ``auth`` value requires among the mechanisms offered:

- ``password-cleartext``: SASL PLAIN or LOGIN (what clients send for it); on
  IMAP also the LOGIN command unless LOGINDISABLED, on POP3 also USER/PASS.
- ``password-encrypted``: CRAM-MD5, the one mechanism clients use for it
  (Thunderbird's "encrypted password", Apple's EmailAuthCRAMMD5); a server
  offering only SCRAM or DIGEST-MD5 fails those clients.
- ``NTLM``, ``GSSAPI``: the mechanism of that name; ``OAuth2``: XOAUTH2 or OAUTHBEARER.
- ``TLS-client-cert``: not checked; servers offer EXTERNAL only to a client that
  shows a certificate, and the probe has none.
- ``client-IP-address``, ``none``: no login, nothing to look for; but an SMTP
  server that offers AUTH to a file that turns authentication off is a
  mismatch: it most likely relays only for clients that log in.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from autoconf.model import Auth, Security, Server, ServerType
from autoconf.probe.dialects import DIALECTS
from autoconf.probe.session import Mismatch, Offer, Session

MECHANISMS: dict[Auth, tuple[str, ...]] = {
    Auth.PASSWORD_CLEARTEXT: ("PLAIN", "LOGIN"),
    Auth.PASSWORD_ENCRYPTED: ("CRAM-MD5",),
    Auth.NTLM: ("NTLM",),
    Auth.GSSAPI: ("GSSAPI",),
    Auth.OAUTH2: ("XOAUTH2", "OAUTHBEARER"),
}
# OpenSSL's verify codes that mean "issuer unknown": a private CA, say.
_UNTRUSTED = {2, 18, 19, 20, 21}
_NAME_MISMATCH = {62, 64}  # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH


@dataclass(frozen=True, slots=True)
class Result:
    server: Server
    host: str
    ok: bool
    detail: str


def reason(exc: BaseException) -> str:
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
        raise Mismatch(f"{step}: {reason(exc)}") from None
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
    if server.type is ServerType.SMTP and not server.needs_login and offer.mechanisms:
        # The most common cause of "sending fails": clients told not to log in,
        # a server that relays only for those who do.
        problems.append(
            f"{'/'.join(a.value for a in server.auth)}: the file turns SMTP "
            f"authentication off, but the server offers AUTH {offered}: clients will "
            "not log in, and it will refuse to relay their mail unless it takes it "
            "by address alone"
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
