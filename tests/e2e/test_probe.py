"""`mail-autoconf probe` against real servers: Dovecot for IMAP and POP3, aiosmtpd for SMTP.

The servers start once for the module on 127.0.0.1 free ports, with
certificates for "localhost" from a test CA; the faults are real servers
configured wrongly (no TLS, a certificate for another name, mechanisms missing).
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml

from autoconf.cli import main
from tests.e2e.mailservers import (
    Dovecot,
    Smtp,
    SmtpListener,
    start_dovecot,
    start_smtp,
    write_cert,
)
from tests.e2e.processes import free_port

DOMAIN = "probe.test"
OTHER_NAME = "mail.other.example"
UNTRUSTED = "certificate not trusted: unable to get local issuer certificate"


@dataclass
class Mail:
    ca_file: Path
    dovecot: Dovecot  # TLS on: implicit-TLS ports, and STARTTLS/STLS on the plain ones
    plain_dovecot: Dovecot  # no TLS at all: no STARTTLS, no STLS
    smtp: Smtp


@pytest.fixture(scope="module")
def mail(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mail]:
    base = tmp_path_factory.mktemp("mail")
    ca = trustme.CA()
    ca_file = base / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    cert = write_cert(ca, base / "certs", "localhost")
    other = write_cert(ca, base / "certs", OTHER_NAME)
    stoppers: list[Callable[[], None]] = []
    try:
        dovecot = start_dovecot(base / "dovecot", cert)
        stoppers.append(dovecot.stop)
        plain_dovecot = start_dovecot(base / "plain-dovecot", None)
        stoppers.append(plain_dovecot.stop)
        smtp = start_smtp(
            base / "smtp",
            {
                "smtps": SmtpListener("ssl", cert),
                "submission": SmtpListener("starttls", cert),
                "no_starttls": SmtpListener("plain"),
                "other_name": SmtpListener("ssl", other),
                "login_only": SmtpListener("starttls", cert, ["LOGIN"]),
                "cram_only": SmtpListener("starttls", cert, ["CRAM-MD5"]),
            },
        )
        stoppers.append(smtp.stop)
        yield Mail(ca_file, dovecot, plain_dovecot, smtp)
    finally:
        for stop in reversed(stoppers):
            stop()


def server(kind: str, port: int | None, security: str, **extra: Any) -> dict[str, Any]:
    assert port is not None
    return {"type": kind, "host": "localhost", "port": port, "security": security, **extra}


def good_incoming(mail: Mail) -> list[dict[str, Any]]:
    return [
        server("imap", mail.dovecot.imaps, "ssl"),
        server("imap", mail.dovecot.imap, "starttls"),
        server("pop3", mail.dovecot.pop3s, "ssl"),
        server("pop3", mail.dovecot.pop3, "starttls"),
    ]


def good_outgoing(mail: Mail) -> list[dict[str, Any]]:
    return [
        server("smtp", mail.smtp.port("smtps"), "ssl"),
        server("smtp", mail.smtp.port("submission"), "starttls"),
    ]


@dataclass
class Row:
    server: str
    port: int
    security: str
    result: str
    detail: str


def probe(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    incoming: list[dict[str, Any]],
    outgoing: list[dict[str, Any]],
    *options: str,
    domain: str = DOMAIN,
) -> tuple[int, list[Row]]:
    """Run `mail-autoconf probe` on a domain file of these servers; the exit code and the table."""
    folder = tmp_path / "domains"
    folder.mkdir(exist_ok=True)
    document = {"domains": [domain], "incoming": incoming, "outgoing": outgoing}
    (folder / "probe.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    code = main(["probe", domain, "--domains", str(folder), *options])
    return code, parse_table(capsys.readouterr().out)


def parse_table(text: str) -> list[Row]:
    """The table's rows, cut at the header's column starts; the summary line must agree."""
    lines = text.splitlines()
    header, rows, summary = lines[0], lines[1:-1], lines[-1]
    starts = [m.start() for m in re.finditer(r"\S+", header)]
    assert header.split() == ["server", "port", "security", "result", "detail"]
    parsed = []
    for line in rows:
        cells = [line[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
        parsed.append(Row(cells[0], int(cells[1]), cells[2], cells[3], cells[4]))
    failed = sum(r.result != "ok" for r in parsed)
    assert summary == f"{len(parsed)} servers: {len(parsed) - failed} ok, {failed} failed"
    return parsed


def with_ca(mail: Mail) -> tuple[str, ...]:
    return ("--ca-file", str(mail.ca_file), "--timeout", "5")


def test_every_server_that_does_what_the_file_says_passes(
    mail: Mail, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    incoming, outgoing = good_incoming(mail), good_outgoing(mail)
    code, rows = probe(tmp_path, capsys, incoming, outgoing, *with_ca(mail))
    assert [(r.server, r.port, r.security) for r in rows] == [
        (f"{s['type']} localhost", s["port"], s["security"]) for s in incoming + outgoing
    ]
    assert [r.result for r in rows] == ["ok"] * 6, rows
    for row in rows:
        assert re.fullmatch(
            r"TLSv1\.[23], certificate valid, AUTH (PLAIN LOGIN|LOGIN PLAIN)", row.detail
        ), row
    assert code == 0


# Each fault: the faulty server (from the running ones) and what probe must say.
FAULTS: dict[str, tuple[Callable[[Mail], dict[str, Any]], str]] = {
    "smtp-no-starttls": (
        lambda m: server("smtp", m.smtp.port("no_starttls"), "starttls"),
        "STARTTLS not offered",
    ),
    "imap-no-starttls": (
        lambda m: server("imap", m.plain_dovecot.imap, "starttls"),
        "STARTTLS not offered",
    ),
    "pop3-no-stls": (
        lambda m: server("pop3", m.plain_dovecot.pop3, "starttls"),
        "STLS not offered",
    ),
    "certificate-for-another-name": (
        lambda m: server("smtp", m.smtp.port("other_name"), "ssl"),
        f"certificate is for {OTHER_NAME}, not localhost",
    ),
    "closed-port": (
        lambda m: server("smtp", free_port(), "starttls"),
        "connect: connection refused",
    ),
    "auth-plain-missing": (
        lambda m: server("smtp", m.smtp.port("cram_only"), "starttls", auth="password-cleartext"),
        "password-cleartext: AUTH PLAIN or LOGIN missing; offered: CRAM-MD5",
    ),
    "cram-md5-missing": (
        lambda m: server("imap", m.dovecot.imaps, "ssl", auth="password-encrypted"),
        "password-encrypted: AUTH CRAM-MD5 missing; offered: PLAIN LOGIN",
    ),
    "implicit-tls-on-a-plain-port": (
        lambda m: server("imap", m.dovecot.imap, "ssl"),
        "TLS handshake: wrong version number",
    ),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_a_fault_fails_the_probe_and_is_named(
    fault: str, mail: Mail, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make, expected = FAULTS[fault]
    faulty = make(mail)
    incoming = [server("imap", mail.dovecot.imaps, "ssl")]
    outgoing = [server("smtp", mail.smtp.port("submission"), "starttls")]
    (outgoing if faulty["type"] == "smtp" else incoming).append(faulty)
    code, rows = probe(tmp_path, capsys, incoming, outgoing, *with_ca(mail))
    at = next(i for i, s in enumerate(incoming + outgoing) if s is faulty)
    assert (rows[at].port, rows[at].result, rows[at].detail) == (faulty["port"], "FAIL", expected)
    others = rows[:at] + rows[at + 1 :]
    assert [r.result for r in others] == ["ok", "ok"], rows  # one fault taints nothing else
    assert code == 1


def test_a_private_ca_is_not_trusted_without_ca_file(
    mail: Mail, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    incoming, outgoing = good_incoming(mail), good_outgoing(mail)
    code, rows = probe(tmp_path, capsys, incoming, outgoing, "--timeout", "5")
    assert {(r.result, r.detail) for r in rows} == {
        ("FAIL", f"{UNTRUSTED} (a private CA? pass --ca-file)")
    }
    assert code == 1


def test_login_alone_serves_cleartext_and_cram_md5_serves_encrypted(
    mail: Mail, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    incoming = [server("imap", mail.dovecot.imaps, "ssl")]
    outgoing = [
        server("smtp", mail.smtp.port("login_only"), "starttls", auth="password-cleartext"),
        server("smtp", mail.smtp.port("cram_only"), "starttls", auth="password-encrypted"),
    ]
    code, rows = probe(tmp_path, capsys, incoming, outgoing, *with_ca(mail))
    assert [(r.result, r.detail.rsplit(", ", 1)[-1]) for r in rows[1:]] == [
        ("ok", "AUTH LOGIN"),
        ("ok", "AUTH CRAM-MD5"),
    ]
    assert code == 0


def test_a_plain_server_the_rule_hides_is_probed_and_marked(
    mail: Mail, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    incoming = [
        server("imap", mail.dovecot.imaps, "ssl"),
        server("imap", mail.plain_dovecot.imap, "none"),
    ]
    outgoing = [server("smtp", mail.smtp.port("smtps"), "ssl")]
    code, rows = probe(tmp_path, capsys, incoming, outgoing, *with_ca(mail))
    assert (rows[1].result, rows[1].detail) == (
        "ok",
        "no TLS, AUTH PLAIN LOGIN [not served: plaintext rule]",
    )
    assert "not served" not in rows[0].detail + rows[2].detail
    assert code == 0


def test_the_host_placeholder_is_filled_with_the_domain(
    mail: Mail, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    incoming = [server("imap", mail.dovecot.imap, "starttls", host="%EMAILDOMAIN%")]
    outgoing = [server("smtp", mail.smtp.port("smtps"), "ssl", host="%EMAILDOMAIN%")]
    code, rows = probe(tmp_path, capsys, incoming, outgoing, *with_ca(mail), domain="localhost")
    assert [(r.server, r.result) for r in rows] == [
        ("imap localhost", "ok"),
        ("smtp localhost", "ok"),
    ]
    assert code == 0


def test_a_server_that_never_answers_times_out(
    mail: Mail, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as silent:  # accepts connections (the kernel does) and says nothing
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        incoming = [server("imap", mail.dovecot.imaps, "ssl")]
        outgoing = [server("smtp", port, "ssl"), server("smtp", port, "starttls")]
        began = time.monotonic()
        code, rows = probe(
            tmp_path, capsys, incoming, outgoing, "--ca-file", str(mail.ca_file), "--timeout", "1"
        )
        elapsed = time.monotonic() - began
    assert [(r.result, r.detail) for r in rows[1:]] == [
        ("FAIL", "TLS handshake: no answer within 1 s"),
        ("FAIL", "greeting: no answer within 1 s"),
    ]
    assert rows[0].result == "ok"
    assert code == 1
    assert elapsed < 3, "the servers are probed in parallel, each within its timeout"


def test_smtp_authentication_turned_off_is_caught(
    mail: Mail, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The first cause of "sending fails": a file that tells clients not to log in to
    an SMTP server that offers AUTH (and so relays for those who do)."""
    incoming = [server("imap", mail.dovecot.imaps, "ssl")]
    outgoing = [server("smtp", mail.smtp.port("submission"), "starttls", auth="none")]
    code, rows = probe(tmp_path, capsys, incoming, outgoing, *with_ca(mail))
    assert rows[1].result == "FAIL"
    assert "turns SMTP authentication off, but the server offers AUTH LOGIN PLAIN" in (
        rows[1].detail
    )
    assert code == 1
