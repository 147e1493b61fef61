"""A whole mail system for client tests: Debian's Dovecot and Postfix, on the real ports.

:func:`start_mailstack` runs, inside the network namespace the calling thread is
in (tests/e2e/namespace.py: there root binds any port of 127.0.0.1, and nothing
else listens), with every file in temporary folders:

- Dovecot (``dovecot -F -c CONF``, its own ``base_dir`` and ``state_dir``):
  IMAP on 143 (STARTTLS) and 993 (implicit TLS), POP3 on 110 (STLS) and 995,
  LMTP for Postfix's deliveries and an authentication listener for Postfix's
  SASL, both on free ports of 127.0.0.1. A passwd-file holds each user's login
  and password (passdb) and, apart, the names mail and logins are looked up by
  (userdb): a user who logs in with the local part alone (``carol``) still gets
  mail for ``carol@b.test``, and no other login name works.
- Postfix (``postfix -c DIR start-fg``, its own ``config_directory``,
  ``queue_directory`` and ``data_directory``; ``maillog_file`` in the folder):
  SMTP on 25, submission on 587 (STARTTLS required) and 465 (implicit TLS),
  both with Dovecot's SASL and nothing accepted without a login; the users'
  domains are virtual mailbox domains, delivered over LMTP to Dovecot.

The certificate (test CA of trustme) names every host of ``hosts``. The
unprivileged processes (Dovecot's ``dovecot``, Postfix's ``postfix``) cannot
enter pytest's private temporary folders, so everything lives in a folder of
its own (``MailStack.folder``), removed on stop. Each program is stopped by the
PID of its master. Nothing is installed or started at import; the Makefile's
``debian-packages`` target installs the packages.
"""

from __future__ import annotations

import pwd
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import trustme

from tests.e2e.processes import START_TIMEOUT, Started, free_port, port_open, start, wait_until

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"
MASTER = "/usr/lib/postfix/sbin/master"
MAIL_HOSTNAME = "mx.mailstack.test"
DELIVERY_TIMEOUT = 20.0


@dataclass(frozen=True)
class MailUser:
    """One mailbox: its address, the name it logs in with, and its password."""

    address: str
    login: str
    password: str

    @property
    def domain(self) -> str:
        return self.address.rsplit("@", 1)[1]


@dataclass(frozen=True)
class MailPorts:
    """The ports the clients see; the standard ones unless a test moves them."""

    imap: int = 143
    imaps: int = 993
    pop3: int = 110
    pop3s: int = 995
    smtp: int = 25
    submission: int = 587
    submissions: int = 465


@dataclass
class MailStack:
    folder: Path
    dovecot: Started
    postfix: Started
    ports: MailPorts
    users: list[MailUser]
    ca: trustme.CA
    _stopped: bool = field(default=False, repr=False)

    def mailbox(self, user: MailUser) -> Path:
        """The user's Maildir (Dovecot's ``mail_location``)."""
        return self.folder / "home" / user.address / "Maildir"

    def maillog(self) -> str:
        """Postfix's log (``maillog_file``): every delivery and every fatal error."""
        path = self.folder / "postfix.log"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def dovecot_log(self) -> str:
        path = self.folder / "dovecot.log"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def logins(self) -> list[tuple[str, str, int]]:
        """Each login Dovecot accepted: (``imap`` or ``pop3``, the user, the port)."""
        found = re.findall(
            r"(imap|pop3)-login: Info: Login: user=<([^>]*)>, lport=(\d+),", self.dovecot_log()
        )
        return [(protocol, user, int(port)) for protocol, user, port in found]

    def refused_logins(self) -> list[str]:
        """The user names Dovecot refused (unknown, or a wrong password)."""
        pattern = r"passwd-file\(([^,)]*)[^)]*\): (?:unknown user|Password mismatch)"
        return re.findall(pattern, self.dovecot_log())

    def submitted(self) -> list[tuple[str, str]]:
        """Each message Postfix took on a submission port, after a login:
        (``submission`` for 587 or ``submissions`` for 465, the SASL user name)."""
        pattern = (
            r"postfix/(submissions?)/smtpd\[\d+\]: \w+: client=[^,]*, "
            r"sasl_method=\S+, sasl_username=(\S+)"
        )
        return re.findall(pattern, self.maillog())

    def delivered(self) -> list[str]:
        """The recipients Postfix delivered to Dovecot (over LMTP)."""
        return re.findall(r"postfix/lmtp\[\d+\]: \w+: to=<([^>]*)>.* status=sent", self.maillog())

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        try:
            self.postfix.stop()
        finally:
            self.dovecot.stop()
            shutil.rmtree(self.folder, ignore_errors=True)


def _write_certificate(ca: trustme.CA, folder: Path, hosts: Sequence[str]) -> tuple[Path, Path]:
    issued = ca.issue_cert(*hosts)
    chain, key = folder / "cert.pem", folder / "key.pem"
    chain.write_bytes(b"".join(pem.bytes() for pem in issued.cert_chain_pems))
    issued.private_key_pem.write_to_path(str(key))
    key.chmod(0o600)
    return chain, key


def _user_files(folder: Path, users: Sequence[MailUser], uid: int, gid: int) -> tuple[Path, Path]:
    """The passdb (login and password) and the userdb (every name a user is looked
    up by: the login at IMAP and POP3, the address at LMTP), one home a user."""
    passdb, userdb = folder / "passdb", folder / "userdb"
    pass_lines, user_lines = [], []
    for user in users:
        assert ":" not in user.login + user.password, "passwd-file fields have no colon"
        home = folder / "home" / user.address
        home.mkdir(parents=True)
        shutil.chown(home, uid, gid)
        pass_lines.append(f"{user.login}:{{PLAIN}}{user.password}::::::\n")
        for name in dict.fromkeys([user.login, user.address]):
            user_lines.append(f"{name}::{uid}:{gid}::{home}::\n")
    passdb.write_text("".join(pass_lines), encoding="utf-8")
    userdb.write_text("".join(user_lines), encoding="utf-8")
    return passdb, userdb


def dovecot_config(
    folder: Path,
    cert: tuple[Path, Path],
    ports: MailPorts,
    lmtp_port: int,
    auth_port: int,
    users: tuple[Path, Path],
    uid: int,
) -> str:
    """A complete dovecot.conf: nothing of /etc/dovecot is read."""
    chain, key = cert
    passdb, userdb = users

    def listener(name: str, port: int, ssl: bool) -> str:
        tls = "yes" if ssl else "no"
        return f"  inet_listener {name} {{\n    port = {port}\n    ssl = {tls}\n  }}\n"

    return f"""# Generated for a test by tests/e2e/mailstack.py
base_dir = {folder}/dovecot-run
state_dir = {folder}/dovecot-state
instance_name = mailstack-{lmtp_port}
log_path = {folder}/dovecot.log
protocols = imap pop3 lmtp
listen = 127.0.0.1
ssl = yes
ssl_cert = <{chain}
ssl_key = <{key}
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = yes
# Every failed login logged with the name tried (a client that guessed a login
# shows), and each login with the port it came to.
auth_verbose = yes
login_log_format_elements = user=<%u> lport=%{{lport}} method=%m rip=%r lip=%l mpid=%e %c
auth_mechanisms = plain login
mail_location = maildir:~/Maildir
first_valid_uid = {uid}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {passdb}
}}
userdb {{
  driver = passwd-file
  args = {userdb}
}}
service imap-login {{
{listener("imap", ports.imap, False)}{listener("imaps", ports.imaps, True)}}}
service pop3-login {{
{listener("pop3", ports.pop3, False)}{listener("pop3s", ports.pop3s, True)}}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp_port}
  }}
}}
# Postfix's SASL (smtpd_sasl_type = dovecot) over TCP: no socket permissions to
# arrange between Dovecot's and Postfix's users.
service auth {{
  inet_listener auth-postfix {{
    address = 127.0.0.1
    port = {auth_port}
  }}
}}
"""


def postfix_main_cf(
    folder: Path, cert: tuple[Path, Path], domains: Sequence[str], lmtp_port: int, auth_port: int
) -> str:
    chain, key = cert
    return f"""# Generated for a test by tests/e2e/mailstack.py
compatibility_level = 3.6
queue_directory = {folder}/postfix-queue
data_directory = {folder}/postfix-data
meta_directory = /etc/postfix
maillog_file = {folder}/postfix.log
maillog_file_prefixes = {folder}
myhostname = {MAIL_HOSTNAME}
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
biff = no
smtputf8_enable = yes
virtual_mailbox_domains = {" ".join(domains)}
virtual_mailbox_maps = texthash:{folder}/postfix-conf/mailboxes
virtual_transport = lmtp:inet:127.0.0.1:{lmtp_port}
smtpd_tls_chain_files = {key}, {chain}
smtpd_tls_security_level = may
smtpd_tls_auth_only = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = inet:127.0.0.1:{auth_port}
smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination
"""


def postfix_master_cf(ports: MailPorts) -> str:
    """No service chrooted (the folder is not laid out for it); the submission ports
    accept nothing before a login, and log as ``postfix/submission`` (587) and
    ``postfix/submissions`` (465)."""
    submission = (
        "  -o smtpd_sasl_auth_enable=yes\n"
        "  -o smtpd_client_restrictions=permit_sasl_authenticated,reject\n"
    )
    services = [
        ("pickup", "unix", "n", "60", "1", "pickup"),
        ("cleanup", "unix", "n", "-", "0", "cleanup"),
        ("qmgr", "unix", "n", "300", "1", "qmgr"),
        ("tlsmgr", "unix", "-", "1000?", "1", "tlsmgr"),
        ("rewrite", "unix", "-", "-", "-", "trivial-rewrite"),
        ("bounce", "unix", "-", "-", "0", "bounce"),
        ("defer", "unix", "-", "-", "0", "bounce"),
        ("trace", "unix", "-", "-", "0", "bounce"),
        ("verify", "unix", "-", "-", "1", "verify"),
        ("flush", "unix", "n", "1000?", "0", "flush"),
        ("proxymap", "unix", "-", "-", "-", "proxymap"),
        ("smtp", "unix", "-", "-", "-", "smtp"),
        ("relay", "unix", "-", "-", "-", "smtp"),
        ("showq", "unix", "n", "-", "-", "showq"),
        ("error", "unix", "-", "-", "-", "error"),
        ("retry", "unix", "-", "-", "-", "error"),
        ("discard", "unix", "-", "-", "-", "discard"),
        ("lmtp", "unix", "-", "-", "-", "lmtp"),
        ("anvil", "unix", "-", "-", "1", "anvil"),
        ("scache", "unix", "-", "-", "1", "scache"),
        ("postlog", "unix-dgram", "n", "-", "1", "postlogd"),
    ]
    lines = ["# Generated for a test by tests/e2e/mailstack.py\n"]
    lines.append(f"127.0.0.1:{ports.smtp} inet n - n - - smtpd\n")
    lines.append(f"127.0.0.1:{ports.submission} inet n - n - - smtpd\n")
    lines.append("  -o syslog_name=postfix/submission\n")
    lines.append("  -o smtpd_tls_security_level=encrypt\n" + submission)
    lines.append(f"127.0.0.1:{ports.submissions} inet n - n - - smtpd\n")
    lines.append("  -o syslog_name=postfix/submissions\n")
    lines.append("  -o smtpd_tls_wrappermode=yes\n" + submission)
    for name, kind, private, wakeup, limit, command in services:
        lines.append(f"{name} {kind} {private} - n {wakeup} {limit} {command}\n")
    return "".join(lines)


def start_mailstack(
    workdir: Path,
    users: Sequence[MailUser],
    hosts: Sequence[str],
    ports: MailPorts | None = None,
) -> MailStack:
    """Dovecot and Postfix for ``users`` (their domains are the mail domains), with
    one certificate for ``hosts``; ready when every port accepts. ``workdir``
    gets the programs' own output (``dovecot.out``, ``postfix.out``); their logs
    are in the stack's folder, read with ``maillog()`` and ``dovecot_log()``."""
    for program in (DOVECOT, POSTFIX):
        assert Path(program).exists(), f"{program} is missing: make debian-packages"
    ports = ports or MailPorts()
    workdir.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="mail-autoconf-mailstack-"))
    folder.chmod(0o755)
    started: list[Started] = []
    try:
        mail_user = pwd.getpwnam("dovecot")
        ca = trustme.CA()
        (folder / "ca.pem").write_bytes(ca.cert_pem.bytes())
        cert = _write_certificate(ca, folder, [MAIL_HOSTNAME, *hosts])
        user_files = _user_files(folder, users, mail_user.pw_uid, mail_user.pw_gid)
        lmtp_port, auth_port = free_port(), free_port()

        conf = folder / "dovecot.conf"
        conf.write_text(
            dovecot_config(folder, cert, ports, lmtp_port, auth_port, user_files, mail_user.pw_uid),
            encoding="utf-8",
        )
        dovecot = start([DOVECOT, "-F", "-c", str(conf)], workdir / "dovecot.out", cwd=folder)
        started.append(dovecot)
        dovecot_ports = [ports.imap, ports.imaps, ports.pop3, ports.pop3s, lmtp_port, auth_port]
        wait_until(lambda: all(port_open(p) for p in dovecot_ports), dovecot, "dovecot")

        config = folder / "postfix-conf"
        config.mkdir()
        # The queue's subfolders are made by `postfix start-fg` itself
        # (post-install create-missing); the top ones must be there.
        (folder / "postfix-queue").mkdir()
        (folder / "postfix-data").mkdir(mode=0o700)
        shutil.chown(folder / "postfix-data", "postfix")
        domains = list(dict.fromkeys(user.domain for user in users))
        (config / "main.cf").write_text(
            postfix_main_cf(folder, cert, domains, lmtp_port, auth_port), encoding="utf-8"
        )
        (config / "master.cf").write_text(postfix_master_cf(ports), encoding="utf-8")
        (config / "mailboxes").write_text(
            "".join(f"{user.address} ok\n" for user in users), encoding="utf-8"
        )
        # `postfix check` makes the queue's subfolders (post-install
        # create-missing) and fails on a broken configuration; then the master
        # itself in the foreground, whose PID is the one started here (`postfix
        # start-fg` would leave it a child of a shell, out of reach of stop).
        checked = subprocess.run(
            [POSTFIX, "-c", str(config), "check"],
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT,
            check=False,
        )
        maillog = folder / "postfix.log"
        log = maillog.read_text(errors="replace") if maillog.exists() else ""
        assert checked.returncode == 0, f"postfix check failed:\n{checked.stderr}{log}"
        master = [MASTER, "-c", str(config), "-d"]
        postfix = start(master, workdir / "postfix.out", cwd=folder)
        started.append(postfix)
        smtp_ports = [ports.smtp, ports.submission, ports.submissions]
        wait_until(lambda: all(port_open(p) for p in smtp_ports), postfix, "postfix")
    except BaseException:
        for process in reversed(started):
            process.stop()
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return MailStack(folder, dovecot, postfix, ports, list(users), ca)
