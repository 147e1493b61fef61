"""Real mail servers for `probe` tests: Debian's Dovecot, and aiosmtpd in a subprocess.

Both run on 127.0.0.1 free ports with a generated config in a tmp folder and
are stopped by their PID. Nothing is installed or started at import; the
Makefile's ``debian-packages`` target installs Dovecot.

Run as ``python -m tests.e2e.mailservers smtp LISTENERS.json`` this module is
the SMTP server itself (see :func:`serve_smtp`).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import json
import os
import pwd
import secrets
import shutil
import ssl
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import trustme

from tests.e2e.processes import Started, free_port, port_open, start, wait_until

ROOT = Path(__file__).resolve().parents[2]
DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
USER, PASSWORD = "alice@probe.test", "secret"


@dataclass(frozen=True)
class CertFiles:
    chain: Path  # leaf first, then the CA
    key: Path


def write_cert(ca: trustme.CA, folder: Path, *names: str) -> CertFiles:
    """A server certificate for ``names``, issued by ``ca``, as PEM files in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    issued = ca.issue_cert(*names)
    stem = names[0].replace("*", "_")
    chain, key = folder / f"{stem}.pem", folder / f"{stem}.key"
    chain.write_bytes(b"".join(pem.bytes() for pem in issued.cert_chain_pems))
    issued.private_key_pem.write_to_path(str(key))
    key.chmod(0o600)
    return CertFiles(chain, key)


# --- Dovecot -------------------------------------------------------------------


@dataclass
class Dovecot:
    started: Started
    public: Path  # the folder the unprivileged processes read
    imaps: int | None  # implicit TLS; None without TLS
    imap: int | None  # STARTTLS when TLS is on
    pop3s: int | None
    pop3: int | None

    def stop(self) -> None:
        self.started.stop()
        shutil.rmtree(self.public, ignore_errors=True)


def dovecot_config(
    work: Path, cert: CertFiles | None, ports: dict[str, int | None], users: Path, mail_uid: int
) -> str:
    """A complete dovecot.conf: nothing from /etc/dovecot is read."""
    tls = (
        f"ssl = yes\nssl_cert = <{cert.chain}\nssl_key = <{cert.key}\nssl_min_protocol = TLSv1.2"
        if cert
        else "ssl = no"  # so no STARTTLS, no STLS: a fault for probe to name
    )

    def listener(name: str) -> str:
        port = ports[name]
        if port is None:
            return ""
        implicit = "ssl = yes" if name.endswith("s") else "ssl = no"
        return f"  inet_listener {name} {{\n    port = {port}\n    {implicit}\n  }}\n"

    return f"""# Generated for a test by tests/e2e/mailservers.py
base_dir = {work}/run
state_dir = {work}/state
instance_name = dovecot-test-{ports["imap"]}
log_path = {work}/dovecot.log
protocols = imap pop3
listen = 127.0.0.1
{tls}
disable_plaintext_auth = yes
auth_mechanisms = plain login
mail_location = maildir:~/Maildir
first_valid_uid = {mail_uid}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {users}
}}
userdb {{
  driver = passwd-file
  args = {users}
}}
service imap-login {{
{listener("imap")}{listener("imaps")}}}
service pop3-login {{
{listener("pop3")}{listener("pop3s")}}}
"""


def start_dovecot(work: Path, cert: CertFiles | None) -> Dovecot:
    """Dovecot in the foreground (``dovecot -F -c CONF``) with IMAP and POP3 listeners.

    With ``cert``: implicit-TLS listeners, and the plain ones offer STARTTLS/STLS.
    Without: plain listeners only, with no STARTTLS at all.
    """
    assert Path(DOVECOT).exists(), "Dovecot is missing: apt-get install dovecot-imapd dovecot-pop3d"
    work.mkdir(parents=True, exist_ok=True)
    # Dovecot's auth and mail processes run as the unprivileged user "dovecot",
    # which cannot enter pytest's private tmp folders: the user list and the
    # mail home live in a folder of their own, removed on stop.
    public = Path(tempfile.mkdtemp(prefix="mail-autoconf-dovecot-"))
    public.chmod(0o755)
    mail_user = pwd.getpwnam("dovecot")
    home = public / "home"
    home.mkdir()
    os.chown(home, mail_user.pw_uid, mail_user.pw_gid)
    users = public / "users"
    users.write_text(
        f"{USER}:{{PLAIN}}{PASSWORD}:{mail_user.pw_uid}:{mail_user.pw_gid}::{home}::\n",
        encoding="utf-8",
    )
    ports: dict[str, int | None] = {
        "imap": free_port(),
        "imaps": free_port() if cert else None,
        "pop3": free_port(),
        "pop3s": free_port() if cert else None,
    }
    conf = work / "dovecot.conf"
    conf.write_text(dovecot_config(work, cert, ports, users, mail_user.pw_uid), encoding="utf-8")
    started = start([DOVECOT, "-F", "-c", str(conf)], work / "dovecot.out", cwd=work)
    dovecot = Dovecot(started, public, ports["imaps"], ports["imap"], ports["pop3s"], ports["pop3"])
    try:
        wait_until(lambda: all(port_open(p) for p in ports.values() if p), started, "dovecot")
    except BaseException:
        dovecot.stop()
        raise
    return dovecot


# --- SMTP (aiosmtpd) ---------------------------------------------------------------


@dataclass
class SmtpListener:
    """One SMTP port: ``mode`` is ssl (implicit TLS), starttls, or plain (no TLS at all)."""

    mode: str
    cert: CertFiles | None = None
    mechanisms: Sequence[str] = ("PLAIN", "LOGIN")  # among PLAIN, LOGIN, CRAM-MD5
    port: int = field(default_factory=free_port)


@dataclass
class Smtp:
    started: Started
    listeners: dict[str, SmtpListener]

    def port(self, name: str) -> int:
        return self.listeners[name].port

    def stop(self) -> None:
        self.started.stop()


def start_smtp(work: Path, listeners: dict[str, SmtpListener]) -> Smtp:
    """aiosmtpd in a subprocess serving every listener; ready when all ports accept."""
    work.mkdir(parents=True, exist_ok=True)
    spec = work / "smtp.json"
    spec.write_text(json.dumps({name: asdict(lst) for name, lst in listeners.items()}, default=str))
    command = [sys.executable, "-m", "tests.e2e.mailservers", "smtp", str(spec)]
    started = start(command, work / "smtp.log", cwd=ROOT)
    smtp = Smtp(started, listeners)
    try:
        wait_until(lambda: all(port_open(x.port) for x in listeners.values()), started, "aiosmtpd")
    except BaseException:
        smtp.stop()
        raise
    return smtp


class _Handler:
    """Accepts mail and discards it; offers CRAM-MD5 on top of aiosmtpd's PLAIN and LOGIN."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"

    async def auth_CRAM__MD5(self, server: Any, args: list[str]) -> Any:
        from aiosmtpd.smtp import AuthResult

        challenge = f"<{secrets.token_hex(8)}@localhost>".encode()
        answer = await server.challenge_auth(challenge)  # base64-decoded already
        if not isinstance(answer, bytes):  # aborted; aiosmtpd has answered
            return AuthResult(success=False, handled=True)
        try:
            user, digest = answer.decode().rsplit(" ", 1)
        except ValueError:
            return AuthResult(success=False, handled=False)
        expected = hmac.new(PASSWORD.encode(), challenge, hashlib.md5).hexdigest()
        ok = user == USER and hmac.compare_digest(digest, expected)
        return AuthResult(success=ok, handled=False)


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    from aiosmtpd.smtp import AuthResult, LoginPassword

    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok)


async def serve_smtp(spec: dict[str, dict[str, Any]]) -> None:
    """The subprocess: one aiosmtpd server per listener, on one event loop, until killed."""
    from aiosmtpd.smtp import SMTP

    loop = asyncio.get_running_loop()
    for entry in spec.values():
        context = None
        if entry["cert"]:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(entry["cert"]["chain"], entry["cert"]["key"])
        mode = entry["mode"]
        excluded = [m for m in ("PLAIN", "LOGIN", "CRAM-MD5") if m not in entry["mechanisms"]]

        factory = functools.partial(
            SMTP,
            _Handler(),
            hostname="localhost",
            tls_context=context if mode == "starttls" else None,
            # Implicit TLS is TLS already; elsewhere AUTH only after STARTTLS.
            auth_require_tls=mode != "ssl",
            authenticator=_authenticator,
            auth_exclude_mechanism=excluded,
        )
        implicit = context if mode == "ssl" else None
        await loop.create_server(factory, "127.0.0.1", entry["port"], ssl=implicit)
    await asyncio.Event().wait()


if __name__ == "__main__":
    if sys.argv[1:2] != ["smtp"] or len(sys.argv) != 3:
        sys.exit("usage: python -m tests.e2e.mailservers smtp LISTENERS.json")
    asyncio.run(serve_smtp(json.loads(Path(sys.argv[2]).read_text(encoding="utf-8"))))
