"""Delta Chat configures itself through the service, and mail flows through real servers.

The real core (PyPI's deltachat-rpc-server 2.65, tests/e2e/deltachat.py) is
given an address and a password, nothing else, and ``configure`` finds the rest
the way it would for anyone: its built-in provider database, then the URLs of
docs/clients.md#delta-chat. They reach the real service (``mail-autoconf
serve``, tests/data/deltachat/) behind the shipped nginx site with TLS, and the
servers they name are Debian's Dovecot and Postfix (tests/e2e/mailstack.py),
which know the test's users and nothing else: a login Delta Chat guessed would
be refused, and shows in Dovecot's log.

Everything runs in a network namespace of the test's own (only ``lo``), where
root binds 80, 443, 993, 143, 995, 110, 465, 587 and 25. The core resolves
names itself, statically linked: /etc/hosts, then /etc/resolv.conf, A and AAAA
only. So it runs with a hosts file the test wrote bind-mounted over /etc/hosts
(each name a case needs at 127.0.0.1, and no other) and a resolv.conf naming
a dnsmasq in the namespace that answers every other name NXDOMAIN at once and
logs what was asked (``unshare --mount``; the machine's files stay as they are).

Delta Chat's strict TLS checks certificates against the roots compiled into the
core: there is no system store to add the test CA to. So each account sets
``imap_certificate_checks`` = 3 (accept invalid certificates) before
``configure``, which the core applies to IMAP, SMTP and its HTTPS fetch of the
autoconfig document alike. TLS is still spoken everywhere (the core asks only
https:// URLs, Dovecot refuses plaintext logins, Postfix's submission ports
require TLS); only the certificate goes unchecked.

What it checks, for each case a domain file: the settings the core reports
(``get_info()["used_transport_settings"]``: host, port and security of each
server) and the logins it stored (its transports table, since no call of 2.65
returns them) equal the YAML field by field; the one request nginx saw for the
configure; Dovecot's logins and Postfix's submissions by those names; a message
from one account to another arrives, encrypted (2.65 will not send
unencrypted: the two exchange their keys as vCards first, as sharing a contact
does).

About 12 s on two cores: some 3 s to start dnsmasq, the mail stack, the
service, nginx and two cores, 2.5 s to stop them; each configure takes about
0.2 s, each message under a second from send to arrival.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import requests
import yaml

from tests.e2e.deltachat import Core, CoreError, start_core, write_hosts
from tests.e2e.dnsmasq import Dnsmasq, start_dnsmasq
from tests.e2e.mailstack import MailStack, MailUser, start_mailstack
from tests.e2e.namespace import NetworkNamespace, write_resolv_conf
from tests.e2e.nginx import Nginx, start_nginx
from tests.e2e.processes import Started, start_service

DATA = Path(__file__).resolve().parents[1] / "data" / "deltachat"
# Delta Chat's names for the YAML's security values (used_transport_settings).
SECURITY = {"ssl": "tls", "starttls": "starttls"}
WELL_KNOWN = "/.well-known/autoconfig/mail/config-v1.1.xml"
AUTOCONFIG = "/mail/config-v1.1.xml"
IDN = "xn--mller-kva.test"  # müller.test
MESSAGE_TIMEOUT = 20.0
EVENT_TIMEOUT = 10.0


@dataclass(frozen=True)
class Case:
    file: str
    domain: str
    autoconfig_name: bool = True  # autoconfig.D in the hosts file (else only D)

    def yaml(self) -> dict[str, Any]:
        data: dict[str, Any] = yaml.safe_load((DATA / self.file).read_text(encoding="utf-8"))
        return data

    def hosts(self) -> list[str]:
        """The names Delta Chat may reach for this case: the document's, and the
        servers the file names."""
        data = self.yaml()
        names = [f"autoconfig.{self.domain}" if self.autoconfig_name else self.domain]
        return names + [server["host"] for server in data["incoming"] + data["outgoing"]]


CASES = {
    "a-ssl": Case("a-ssl.yaml", "ssl.test"),
    "b-starttls": Case("b-starttls.yaml", "starttls.test"),
    "c-wellknown": Case("c-wellknown.yaml", "wellknown.test", autoconfig_name=False),
}
# POP3 only. Its bare domain is not in the hosts file either: Delta Chat guesses
# IMAP at D itself too, and would find the mail stack's Dovecot there (it serves
# every domain on 127.0.0.1), configuring a server the file never named.
POP3 = Case("d-pop3.yaml", "pop3.test")
IDN_CASES = {
    "autoconfig": Case("e-idn.yaml", IDN),
    "well-known": Case("e-idn.yaml", IDN, autoconfig_name=False),
}
# Delta Chat's own error (2.65) for the POP3-only domain: the document's SMTP
# server is kept, IMAP is guessed at imap.D, mail.D and D, and the first guess's
# failure is the message.
POP3_ERROR = (
    "Error:\n\n“IMAP failed to connect to imap.pop3.test:993:tls: Could not find DNS "
    "resolutions for imap.pop3.test:993. Check server hostname and your network”"
)
# And for an address typed with a Unicode domain: the core neither converts it to
# its A-label nor asks anything, the guessed host names fail the resolver.
UNICODE_ERROR = (
    "Error:\n\n“IMAP failed to connect to imap.müller.test:993:tls: Could not find DNS "
    "resolutions for imap.müller.test:993. Check server hostname and your network”"
)


def fill(template: str, address: str) -> str:
    local, domain = address.rsplit("@", 1)
    filled = template.replace("%EMAILADDRESS%", address)
    return filled.replace("%EMAILLOCALPART%", local).replace("%EMAILDOMAIN%", domain)


def login_of(case: Case, address: str) -> str:
    """The login the file gives ``address`` (the same for IMAP and SMTP here)."""
    data = case.yaml()
    templates = {server["username"] for server in data["incoming"] + data["outgoing"]}
    assert len(templates) == 1, f"{case.file}: one user name for every server"
    return fill(templates.pop(), address)


def user(case: Case, local: str) -> MailUser:
    address = f"{local}@{case.domain}"
    return MailUser(address, login_of(case, address), f"pw-{local}-{case.domain}")


def expected(case: Case, address: str) -> dict[str, list[tuple[str, int, str, str]]]:
    """Each IMAP and SMTP server of the file: (host, port, security, login)."""
    data = case.yaml()
    return {
        kind: [
            (s["host"], s["port"], SECURITY[s["security"]], fill(s["username"], address))
            for s in data[key]
            if s["type"] == kind
        ]
        for kind, key in (("imap", "incoming"), ("smtp", "outgoing"))
    }


def reported(settings: str) -> dict[str, list[tuple[str, int, str]]]:
    """used_transport_settings, such as ``1: ***@a.test imap:[imap.a.test:993:tls]
    smtp:[smtp.a.test:465:tls] cert_accept_invalid_certificates``."""
    found = re.search(r" imap:\[([^\]]*)\] smtp:\[([^\]]*)\]", settings)
    assert found, settings
    servers = {}
    for kind, listed in zip(("imap", "smtp"), found.groups(), strict=True):
        entries = [entry.rsplit(":", 2) for entry in listed.split(", ")]
        servers[kind] = [(host, int(port), security) for host, port, security in entries]
    return servers


def stored(transport: dict[str, Any]) -> dict[str, list[tuple[str, int, str, str]]]:
    """The core's stored transport as (host, port, security, login) a server."""
    return {
        kind: [
            (
                server["connection"]["host"],
                server["connection"]["port"],
                server["connection"]["security"].lower(),
                server["user"],
            )
            for server in transport[kind]
        ]
        for kind in ("imap", "smtp")
    }


def finished(event: dict[str, Any]) -> bool:
    return event.get("progress") in (0, 1000)


@dataclass
class Configured:
    account: int
    error: str | None
    requests: list[str]  # nginx's hosts.log lines during the configure
    queries: list[tuple[str, str]]  # dnsmasq's (type, name) during it
    log: str  # the core's own log of the account


@dataclass
class World:
    namespace: NetworkNamespace
    dnsmasq: Dnsmasq
    mail: MailStack
    service: Started
    service_port: int
    nginx: Nginx
    cores: dict[str, Core]  # "main": the hosts of every case; "well-known": no autoconfig.IDN
    accounts: dict[tuple[str, str], Configured] = field(default_factory=dict)

    def hosts_log(self) -> str:
        path = self.nginx.started.log.parent / "hosts.log"
        return path.read_text(encoding="utf-8") if path.exists() else ""

    def configure(self, address: str, password: str, core: str = "main") -> Configured:
        """An account of ``address`` and ``password`` alone, configured once (kept
        for the next test), with what nginx and dnsmasq saw meanwhile."""
        key = (core, address)
        if key in self.accounts:
            return self.accounts[key]
        dc = self.cores[core]
        marks = len(self.hosts_log()), len(self.dnsmasq.queries())
        account = dc.add_account()
        settings = {"addr": address, "mail_pw": password, "imap_certificate_checks": "3"}
        dc.call("batch_set_config", account, settings)
        error = None
        try:
            dc.call("configure", account)
        except CoreError as exc:
            error = str(exc)
        else:
            dc.call("start_io", account)
        # Its last word on it (1000 done, 0 failed), after the log of the
        # configure: the events come on their own thread, a moment later.
        dc.wait_event(account, "ConfigureProgress", EVENT_TIMEOUT, where=finished)
        requests = self.hosts_log()[marks[0] :].splitlines()
        configured = Configured(
            account, error, requests, self.dnsmasq.queries()[marks[1] :], dc.log(account)
        )
        self.accounts[key] = configured
        return configured


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("deltachat")
    cases = [*CASES.values(), POP3, IDN_CASES["autoconfig"]]
    users = [user(case, local) for case in CASES.values() for local in ("user1", "user2")]
    users += [user(POP3, "user1"), user(IDN_CASES["autoconfig"], "user1")]
    names = list(dict.fromkeys(name for case in cases for name in case.hosts()))
    hosts = {
        "main": write_hosts(base / "hosts", names),
        "well-known": write_hosts(base / "hosts-well-known", IDN_CASES["well-known"].hosts()),
    }
    resolv_conf = write_resolv_conf(base / "resolv.conf", "127.0.0.1")
    # nginx's certificates and servers: autoconfig.D and autodiscover.D of every
    # file (`mail-autoconf certificates`), the bare domains for .well-known.
    bare = [case.domain for case in cases]
    namespace = NetworkNamespace.create()
    try:
        with ExitStack() as stack:
            with namespace.inside():
                dnsmasq = start_dnsmasq(base / "dnsmasq", [], port=53)
                stack.callback(dnsmasq.stop)
                mail = start_mailstack(base / "mail", users, names)
                stack.callback(mail.stop)
                service, port = start_service(DATA, base, "--proxy-hops", "1")
                stack.callback(service.stop)
                nginx = start_nginx(
                    base / "nginx", port, DATA, bare, hosts_log=True, http_port=80, https_port=443
                )
                stack.callback(nginx.stop)
                cores = {}
                for name, hosts_file in hosts.items():
                    cores[name] = start_core(base / f"core-{name}", hosts_file, resolv_conf)
                    stack.callback(cores[name].stop)
            yield World(namespace, dnsmasq, mail, service, port, nginx, cores)
            # The logs of a failed run, where pytest keeps its temporary folder.
            for log in ("postfix.log", "dovecot.log"):
                source = mail.folder / log
                if source.exists():
                    shutil.copy(source, base / "mail" / log)
    finally:
        namespace.close()


def logged(sni: str, target: str) -> tuple[str, str, str, int]:
    return (sni, sni, target, 200)


def parse_requests(lines: list[str]) -> list[tuple[str, str, str, int]]:
    """nginx's hosts.log lines (SNI, Host, the target, the status), the target's
    query decoded: Delta Chat percent-encodes even ``-``."""
    parsed = []
    for line in lines:
        found = re.fullmatch(r'(\S+) (\S+) "([^"]*)" (\d+)', line)
        assert found, line
        sni, host, target, status = found.groups()
        parsed.append((sni, host, unquote(target), int(status)))
    return parsed


def assert_configured_as_the_yaml(world: World, case: Case, account: MailUser, core: str) -> None:
    configured = world.configure(account.address, account.password, core)
    assert configured.error is None, f"{configured.error}\n{configured.log}"
    info = world.cores[core].call("get_info", configured.account)
    want = expected(case, account.address)
    without_login = {kind: [s[:3] for s in servers] for kind, servers in want.items()}
    assert reported(info["used_transport_settings"]) == without_login
    transport = world.cores[core].configured_transport(configured.account)
    assert stored(transport) == want
    assert transport["certificate_checks"] == "AcceptInvalidCertificates"
    # The one document it fetched, and how.
    if case.autoconfig_name:
        target = f"{AUTOCONFIG}?emailaddress={account.address}"
        assert parse_requests(configured.requests) == [logged(f"autoconfig.{case.domain}", target)]
    else:
        assert parse_requests(configured.requests) == [logged(case.domain, WELL_KNOWN)]
        # Its first URL failed at the name: autoconfig.D is in no hosts file.
        assert ("A", f"autoconfig.{case.domain}") in configured.queries
    # Dovecot let it in by the file's login, on the file's port; no login was guessed.
    (imap,) = want["imap"]
    assert ("imap", account.login, imap[1]) in world.mail.logins()
    assert account.login not in world.mail.refused_logins()


@pytest.mark.parametrize("name", CASES)
def test_configure_with_address_and_password_gives_the_yaml(world: World, name: str) -> None:
    case = CASES[name]
    for local in ("user1", "user2"):
        assert_configured_as_the_yaml(world, case, user(case, local), "main")


@pytest.mark.parametrize("name", CASES)
def test_a_message_arrives(world: World, name: str) -> None:
    """user1 writes to user2 of the same domain: user1's SMTP, user2's IMAP, both
    as Delta Chat configured them. The keys go first, as vCards."""
    case = CASES[name]
    sender, recipient = user(case, "user1"), user(case, "user2")
    core = world.cores["main"]
    accounts = []
    for account in (sender, recipient):
        configured = world.configure(account.address, account.password)
        assert configured.error is None, configured.error
        accounts.append(configured.account)
    one, two = accounts
    two_card = core.call("make_vcard", two, [1])  # 1: the account's own contact
    core.call("import_vcard_contents", two, core.call("make_vcard", one, [1]))
    (contact,) = core.call("import_vcard_contents", one, two_card)
    chat = core.call("create_chat_by_contact_id", one, contact)
    core.drain(two)
    text = f"hello from {sender.address} ({name})"
    core.call("misc_send_text_message", one, chat, text)
    event = core.wait_event(two, "IncomingMsg", MESSAGE_TIMEOUT)
    message = core.call("get_message", two, event["msgId"])
    assert message["text"] == text
    assert message["sender"]["address"] == sender.address
    assert message["showPadlock"], "the message arrived unencrypted"
    # Postfix took it on the file's submission port, by the file's login, and
    # handed it to Dovecot for the recipient.
    (smtp,) = expected(case, sender.address)["smtp"]
    service = {465: "submissions", 587: "submission"}[smtp[1]]
    assert (service, sender.login) in world.mail.submitted()
    assert recipient.address in world.mail.delivered()


def test_pop3_only_domain_fails_with_delta_chats_own_error(world: World) -> None:
    account = user(POP3, "user1")
    configured = world.configure(account.address, account.password)
    assert configured.error == POP3_ERROR
    # It did read the document (fetched twice in one configure),
    # kept the file's SMTP server, and guessed IMAP where the file has none.
    target = f"{AUTOCONFIG}?emailaddress={account.address}"
    wanted = logged("autoconfig.pop3.test", target)
    assert set(parse_requests(configured.requests)) == {wanted}
    assert "smtp:[smtp.pop3.test:465:tls]" in configured.log
    guesses = ["imap.pop3.test", "mail.pop3.test", "pop3.test"]
    assert [name for kind, name in configured.queries if kind == "A"][:6] == [
        name
        for name in guesses
        for _ in range(2)  # port 993 with TLS, then 143 STARTTLS
    ]


@pytest.mark.parametrize("via", IDN_CASES)
def test_idn_domain_logs_in_with_the_a_label(world: World, via: str) -> None:
    """user1@xn--mller-kva.test, found with the address (autoconfig.D) and without
    it (the .well-known URL, answered for the Host): one login either way."""
    account = user(IDN_CASES[via], "user1")
    assert account.login == f"user1@{IDN}"
    core = "main" if via == "autoconfig" else via
    assert_configured_as_the_yaml(world, IDN_CASES[via], account, core)


def test_idn_document_without_an_address_names_the_a_label(world: World) -> None:
    """What the .well-known case above was given: the service wrote the domain's
    A-label into %EMAILADDRESS% itself, leaving Delta Chat only the local part."""
    url = f"http://127.0.0.1:{world.service_port}{WELL_KNOWN}"
    with world.namespace.inside():
        answer = requests.get(url, headers={"Host": IDN}, timeout=5)
    assert answer.status_code == 200
    usernames = re.findall(r"<username>([^<]*)</username>", answer.text)
    assert usernames == [f"%EMAILLOCALPART%@{IDN}"] * 2


def test_a_unicode_address_reaches_nothing(world: World) -> None:
    """Typed as user1@müller.test, Delta Chat 2.65 asks for nothing: it builds
    every URL and guesses every server with the U-label, which the resolver
    refuses before any query. Its users must type the A-label."""
    configured = world.configure("user1@müller.test", "pw-user1-" + IDN)
    assert configured.error == UNICODE_ERROR
    assert configured.requests == []
    assert configured.queries == []
    assert 'Fetching "https://autoconfig.müller.test/mail/config-v1.1.xml?emailaddress=' in (
        configured.log
    )
