"""Thunderbird 153, the whole way: from the address to mail read and mail sent.

For each account of tests/data/thunderbird-mail/, Thunderbird does what its
account hub does when the user types the address and the password and clicks
Done (Thunderbird.verify_and_create: the search through the service and nginx,
ConfigVerifier's login, CreateInBackend, getNewMessages); then a message
Postfix delivered to the mailbox must be listed in the account's Inbox, and a
message Thunderbird sends through the account's outgoing server must reach
the recipient's mailbox. Every security mode on its standard port (IMAP
993/143, POP3 995/110, SMTP 465/587) and on a port of its own (1993/1143,
1995/1110, 1465/1587).

The mail servers are tests/e2e/mailstack.py's Dovecot and Postfix, on their
real ports, so everything runs inside one private network namespace
(tests/e2e/namespace.py), where root binds any port and nothing else listens:
the test's thread steps in to start two mail stacks (the standard ports and
the moved ones), the service, nginx (on 80 and 443) and Thunderbird. So
Thunderbird runs with no port mapping at all (``network.socket.forcePort``
emptied): it reaches each server on the very port of the account it made, and
a port it got wrong or dropped would lead to no server instead of being
mapped onto the right one. Names resolve through ``network.dns.forceResolve``
(127.0.0.1: the namespace has no DNS; IMAP, POP3 and SMTP ask the same
resolver as HTTP), which keeps the servers' real host names in the account,
in SNI and in the certificates checked. The test talks to Thunderbird over the
Marionette socket opened inside, reads the mailboxes from disk, and steps in
again only to hand Postfix the messages to deliver.
"""

from __future__ import annotations

import re
import smtplib
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.mailstack import MailPorts, MailStack, MailUser, start_mailstack
from tests.e2e.namespace import NetworkNamespace
from tests.e2e.nginx import start_nginx
from tests.e2e.processes import start_service
from tests.e2e.test_thunderbird import assert_same, expected
from tests.e2e.thunderbird import Thunderbird, start_thunderbird
from tests.helpers import wait_for

DOMAINS_DIR = Path(__file__).resolve().parents[1] / "data" / "thunderbird-mail"
# The second stack: every port moved, SMTP's too (the first one holds 25).
MOVED = MailPorts(
    imap=1143, imaps=1993, pop3=1110, pop3s=1995, smtp=2525, submission=1587, submissions=1465
)
DELIVERY_WAIT = 10.0  # Postfix to Dovecot over LMTP: well under a second here
LISTED_WAIT = 10.0
NS_ERROR_FAILURE = 0x80004005


@dataclass(frozen=True)
class Case:
    file: str
    user: MailUser
    stack: str  # "standard" or "moved"

    @property
    def name(self) -> str:
        return self.file.removesuffix(".yaml")


def user(address: str, login: str | None = None) -> MailUser:
    return MailUser(address, login or address, f"{address.split('@')[0]}-pw-7Qx")


CASES = [
    Case("imap-ssl.yaml", user("ann@imap-ssl.test"), "standard"),
    Case("imap-starttls.yaml", user("ben@imap-starttls.test"), "standard"),
    Case("pop3-ssl.yaml", user("cat@pop3-ssl.test"), "standard"),
    Case("pop3-starttls.yaml", user("dora@pop3-starttls.test", "dora"), "standard"),
    Case("moved-imap-ssl.yaml", user("eli@moved-imap-ssl.test"), "moved"),
    Case("moved-imap-starttls.yaml", user("fay@moved-imap-starttls.test"), "moved"),
    Case("moved-pop3-ssl.yaml", user("gil@moved-pop3-ssl.test"), "moved"),
    Case("moved-pop3-starttls.yaml", user("hal@moved-pop3-starttls.test"), "moved"),
    # The login from the file's lookup (a map file), not from a placeholder.
    Case("mapped-login.yaml", user("camille.doe@mapped-login.test", "m0123456"), "standard"),
]
NO_SMTP_AUTH = Case("no-smtp-auth.yaml", user("ivy@no-smtp-auth.test"), "standard")
WRONG_PASSWORD = Case("imap-ssl.yaml", user("zed@imap-ssl.test"), "standard")
# Where the messages Thunderbird sends go: a mailbox of the same stack.
RECIPIENTS = {"standard": user("post@standard.test"), "moved": user("post@moved.test")}


@dataclass
class World:
    namespace: NetworkNamespace
    stacks: dict[str, MailStack]
    thunderbird: Thunderbird


def mail_hosts(cases: list[Case]) -> list[str]:
    return list(dict.fromkeys(f"mail.{case.user.domain}" for case in cases))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("mail")
    namespace = NetworkNamespace.create()
    everyone = [*CASES, NO_SMTP_AUTH, WRONG_PASSWORD]
    try:
        with ExitStack() as cleanup:
            with namespace.inside():
                stacks: dict[str, MailStack] = {}
                for name, ports in (("standard", MailPorts()), ("moved", MOVED)):
                    cases = [case for case in everyone if case.stack == name]
                    users = [case.user for case in cases] + [RECIPIENTS[name]]
                    stacks[name] = start_mailstack(base / name, users, mail_hosts(cases), ports)
                    cleanup.callback(stacks[name].stop)
                service, port = start_service(DOMAINS_DIR, base, "--proxy-hops", "1")
                cleanup.callback(service.stop)
                domains = list(dict.fromkeys(case.user.domain for case in everyone))
                nginx = start_nginx(
                    base / "nginx", port, DOMAINS_DIR, domains, http_port=80, https_port=443
                )
                cleanup.callback(nginx.stop)
                mail_cas = []
                for name, mail_stack in stacks.items():
                    mail_cas.append(base / f"{name}-ca.pem")
                    mail_stack.ca.cert_pem.write_to_path(str(mail_cas[-1]))
                thunderbird = start_thunderbird(
                    base / "thunderbird",
                    nginx.ca_file,
                    nginx.http_port,
                    nginx.https_port,
                    prefs={"network.socket.forcePort": ""},  # every port is the real one
                    more_cas=mail_cas,
                )
                cleanup.callback(thunderbird.stop)
            yield World(namespace, stacks, thunderbird)
    finally:
        namespace.close()


def deliver(world: World, stack: MailStack, to: MailUser, subject: str) -> None:
    """A message from outside handed to Postfix's port 25, which delivers it to
    Dovecot over LMTP; back once it is in the mailbox."""
    message = EmailMessage()
    message["From"] = "someone@elsewhere.test"
    message["To"] = to.address
    message["Subject"] = subject
    message.set_content("Delivered by Postfix in a test.\n")
    with world.namespace.inside(), smtplib.SMTP("127.0.0.1", stack.ports.smtp, timeout=10) as smtp:
        smtp.send_message(message)
    wait_for(lambda: in_mailbox(stack, to, subject), DELIVERY_WAIT, f"{subject!r} delivered")


def in_mailbox(stack: MailStack, to: MailUser, subject: str) -> bool:
    box = stack.mailbox(to)
    for path in [*box.glob("new/*"), *box.glob("cur/*")]:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:  # moved from new/ to cur/ meanwhile
            continue
        if f"\nSubject: {subject}\n" in text.replace("\r\n", "\n"):
            return True
    return False


def created_account(world: World, case: Case) -> dict[str, Any]:
    """The account hub's Done for the case's address; the account must be the YAML's."""
    answer = world.thunderbird.verify_and_create(case.user.address, case.user.password)
    assert "account" in answer, answer
    want = expected(case.file, case.user.address, DOMAINS_DIR)
    if "lookup:" in (DOMAINS_DIR / case.file).read_text(encoding="utf-8"):
        for server in want["incoming"] + want["outgoing"]:
            server["username"] = case.user.login  # what the lookup gives, for every server
    for kind in ("incoming", "outgoing"):
        assert_same([answer["config"][kind]], want[kind][:1])
        kept = dict(want[kind][0])
        if kept["auth"] == "none":  # CreateInBackend keeps no user name without a login
            kept["username"] = ""
        assert_same([answer["created"][kind]], [kept])
    return answer


def listed(world: World, account: str, subject: str) -> list[str]:
    """The Inbox's subjects once ``subject`` is among them, checking for new mail
    again until it is (or the wait is over)."""
    seen: list[str] = []

    def arrived() -> bool:
        seen[:] = world.thunderbird.inbox_subjects(account)
        return subject in seen

    wait_for(arrived, LISTED_WAIT, f"{subject!r} in Thunderbird's Inbox")
    return seen


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_thunderbird_logs_in_reads_and_sends(world: World, case: Case) -> None:
    stack = world.stacks[case.stack]
    incoming = expected(case.file, case.user.address, DOMAINS_DIR)["incoming"][0]
    delivered, sent = f"delivered to {case.name}", f"sent from {case.name}"
    deliver(world, stack, case.user, delivered)
    answer = created_account(world, case)
    # ConfigVerifier's login and the first check for mail: Dovecot saw the login,
    # over the protocol, on the file's port and with TLS.
    assert (incoming["type"], case.user.login, int(incoming["port"])) in stack.logins()
    logins = [
        line
        for line in stack.dovecot_log().splitlines()
        if f"{incoming['type']}-login: Info: Login: user=<{case.user.login}>" in line
    ]
    assert logins, stack.dovecot_log()
    assert all(re.search(r", TLS(,|$)", line) for line in logins), logins
    assert listed(world, answer["account"], delivered) == [delivered]
    recipient = RECIPIENTS[case.stack]
    result = world.thunderbird.send(answer["account"], recipient.address, sent)
    assert result["status"] == 0, result
    wait_for(lambda: in_mailbox(stack, recipient, sent), DELIVERY_WAIT, f"{sent!r} delivered")
    # Postfix took it from the account's own login.
    lines = stack.maillog().splitlines()
    assert any(line.endswith(f" sasl_username={case.user.login}") for line in lines), lines


def test_smtp_without_authentication_is_refused_at_sending(world: World) -> None:
    """A file that turns SMTP authentication off (``auth: none``) for a Postfix whose
    submission port takes nothing without a login: observed, not chosen.

    ConfigVerifier logs in to the incoming server alone (its source says "we
    currently have no SMTP verification"), so the account hub's Done succeeds
    and the account is made with an outgoing server that never sends AUTH.
    Sending then fails at RCPT TO, where Postfix's smtpd_client_restrictions
    reject is applied (smtpd_delay_reject), and Thunderbird's message blames
    the recipient.
    """
    case, stack = NO_SMTP_AUTH, world.stacks[NO_SMTP_AUTH.stack]
    answer = created_account(world, case)
    assert answer["created"]["outgoing"]["auth"] == "none"
    login = f"imap-login: Info: Login: user=<{case.user.login}>"
    assert login in stack.dovecot_log()
    recipient = RECIPIENTS[case.stack]
    result = world.thunderbird.send(answer["account"], recipient.address, "never delivered")
    assert result["status"] == NS_ERROR_FAILURE, result
    assert result["errorMessage"] == (
        "An error occurred while sending mail. The mail server responded:\n"
        "<localhost[127.0.0.1]>: Client host rejected: Access denied.\n"
        f'Please check the message recipient "{recipient.address}" and try again.'
    )
    maillog = stack.maillog()
    assert "NOQUEUE: reject: RCPT from localhost[127.0.0.1]: 554 5.7.1" in maillog
    assert f"sasl_username={case.user.login}" not in maillog
    assert not in_mailbox(stack, recipient, "never delivered")


def test_a_wrong_password_stops_at_configverifier(world: World) -> None:
    """The login is really checked: a wrong password ends the hub's Done in
    ConfigVerifier with Thunderbird's message, and leaves no account behind.

    Observed: Thunderbird tries the password three times in one IMAP session,
    and Dovecot answers each failure after the one before later (its login
    process adds a delay per failed attempt, whatever auth_failure_delay says):
    some 14 s in all, the slowest step of this file.
    """
    case, stack = WRONG_PASSWORD, world.stacks[WRONG_PASSWORD.stack]
    answer = world.thunderbird.verify_and_create(
        case.user.address, "not-the-password", timeout=40.0
    )
    assert answer["stage"] == "verify", answer
    assert answer["error"] == (
        "Unable to log in at server. Probably wrong configuration, username or password."
    )
    assert any(
        "imap-login: Info: Disconnected: Connection closed (auth failed, 3 attempts" in line
        and f"user=<{case.user.login}>" in line
        for line in stack.dovecot_log().splitlines()
    ), stack.dovecot_log()
    # The server ConfigVerifier made for the try is gone: the right password now works.
    created_account(world, case)
