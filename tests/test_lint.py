"""lint: the warnings of docs/domain-files.md#warnings, each at the line and key
path an admin must look at.

Warnings never stop a file from serving: every file here still yields a Provider.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from autoconf.errors import Problem, Severity
from autoconf.folder import load_file
from autoconf.lint import lint
from autoconf.registry import load_folder

EXAMPLES = Path(__file__).resolve().parent / "data" / "examples"


def warnings_of(tmp_path: Path, text: str) -> list[Problem]:
    path = tmp_path / "lint.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    provider, problems = load_file(path)
    assert [str(p) for p in problems if p.is_error] == []
    assert provider is not None, "a warning must never stop a file from serving"
    assert all(p.severity is Severity.WARNING for p in problems)
    assert all(p.file == str(path) for p in problems)
    assert all(str(p).startswith(f"{path}:{p.line}: {p.path}: warning: ") for p in problems)
    return problems


def where(problems: list[Problem]) -> list[tuple[int, str]]:
    return sorted((p.line, p.path) for p in problems)


def message_at(problems: list[Problem], line: int, path: str) -> str:
    (found,) = [p.message for p in problems if (p.line, p.path) == (line, path)]
    return found


def test_security_none_anywhere(tmp_path: Path) -> None:
    problems = warnings_of(
        tmp_path,
        """\
        domains: [example.com]
        incoming:
          - type: imap
            host: imap.example.com
            security: ssl
          - type: imap
            host: imap.example.com
            security: none
            auth: password-encrypted
        outgoing:
          - type: smtp
            host: smtp.example.com
            security: starttls
        """,
    )
    assert where(problems) == [(8, "incoming[1].security")]
    message = message_at(problems, 8, "incoming[1].security")
    assert "security: none" in message
    assert "Thunderbird for Android" in message
    assert "RFC 8314" in message


def test_smtp_on_port_25(tmp_path: Path) -> None:
    problems = warnings_of(
        tmp_path,
        """\
        domains: [example.com]
        incoming:
          - type: imap
            host: imap.example.com
            security: ssl
        outgoing:
          - type: smtp
            host: smtp.example.com
            security: starttls
            port: 25
        """,
    )
    assert where(problems) == [(10, "outgoing[0].port")]
    message = message_at(problems, 10, "outgoing[0].port")
    assert "port 25" in message
    assert "587" in message and "465" in message


def test_imap_on_port_25_is_not_the_smtp_warning(tmp_path: Path) -> None:
    problems = warnings_of(
        tmp_path,
        """\
        domains: [example.com]
        incoming:
          - type: imap
            host: imap.example.com
            security: starttls
            port: 25
        outgoing:
          - type: smtp
            host: smtp.example.com
            security: ssl
        """,
    )
    assert problems == []


def test_password_cleartext_without_tls(tmp_path: Path) -> None:
    problems = warnings_of(
        tmp_path,
        """\
        domains: [example.com]
        incoming:
          - type: imap
            host: imap.example.com
            security: ssl
        outgoing:
          - type: smtp
            host: smtp.example.com
            security: none
            auth: password-cleartext
        """,
    )
    assert where(problems) == [(9, "outgoing[0].security"), (10, "outgoing[0].auth")]
    assert "password-cleartext without TLS" in message_at(problems, 10, "outgoing[0].auth")


def test_password_cleartext_by_default_without_tls_points_at_the_server(tmp_path: Path) -> None:
    problems = warnings_of(
        tmp_path,
        """\
        domains: [example.com]
        incoming:
          - type: imap
            host: imap.example.com
            security: ssl
        outgoing:
          - type: smtp
            host: smtp.example.com
            security: none
        """,
    )
    # No auth line in the file: the warning stands at the server's first line.
    assert where(problems) == [(7, "outgoing[0].auth"), (9, "outgoing[0].security")]
    assert "password-cleartext without TLS" in message_at(problems, 7, "outgoing[0].auth")


def test_pop3_only_provider(tmp_path: Path) -> None:
    problems = warnings_of(
        tmp_path,
        """\
        domains: [example.com]
        incoming:
          - type: pop3
            host: pop.example.com
            security: ssl
        outgoing:
          - type: smtp
            host: smtp.example.com
            security: ssl
        """,
    )
    assert where(problems) == [(3, "incoming")]
    message = message_at(problems, 3, "incoming")
    assert "POP3 only" in message
    # No IMAP at all is also the case "Thunderbird for Android cannot use it".
    assert "Thunderbird for Android" in message


@pytest.mark.parametrize("auth", ["none", "client-IP-address", "[none]"])
def test_no_outgoing_authentication(tmp_path: Path, auth: str) -> None:
    problems = warnings_of(
        tmp_path,
        f"""\
        domains: [example.com]
        incoming:
          - type: imap
            host: imap.example.com
            security: ssl
        outgoing:
          - type: smtp
            host: smtp.example.com
            security: starttls
            auth: {auth}
        """,
    )
    assert where(problems) == [(10, "outgoing[0].auth")]
    assert "no outgoing authentication" in message_at(problems, 10, "outgoing[0].auth")


def test_days_without_leave_messages_on_server(tmp_path: Path) -> None:
    problems = warnings_of(
        tmp_path,
        """\
        domains: [example.com]
        incoming:
          - type: imap
            host: imap.example.com
            security: ssl
          - type: pop3
            host: pop.example.com
            security: ssl
            pop3:
              download_on_biff: true
              days_to_leave_messages_on_server: 14
        outgoing:
          - type: smtp
            host: smtp.example.com
            security: ssl
        """,
    )
    # The warning names days_to_leave_messages_on_server: it must stand on that line.
    assert where(problems) == [(11, "incoming[1].pop3.days_to_leave_messages_on_server")]
    message = message_at(problems, 11, "incoming[1].pop3.days_to_leave_messages_on_server")
    assert "leave_messages_on_server" in message


def test_days_with_leave_messages_false_warns_too(tmp_path: Path) -> None:
    problems = warnings_of(
        tmp_path,
        """\
        domains: [example.com]
        incoming:
          - type: imap
            host: imap.example.com
            security: ssl
          - type: pop3
            host: pop.example.com
            security: ssl
            pop3:
              days_to_leave_messages_on_server: 14
              leave_messages_on_server: false
        outgoing:
          - type: smtp
            host: smtp.example.com
            security: ssl
        """,
    )
    assert where(problems) == [(10, "incoming[1].pop3.days_to_leave_messages_on_server")]


@pytest.mark.parametrize("auth", ["OAuth2", "[OAuth2]", "oauth2"])
def test_oauth2_as_the_only_method(tmp_path: Path, auth: str) -> None:
    problems = warnings_of(
        tmp_path,
        f"""\
        domains: [example.com]
        incoming:
          - type: imap
            host: imap.example.com
            security: ssl
            auth: {auth}
        outgoing:
          - type: smtp
            host: smtp.example.com
            security: ssl
        """,
    )
    assert where(problems) == [(6, "incoming[0].auth")]
    message = message_at(problems, 6, "incoming[0].auth")
    assert "OAuth2" in message
    assert "Thunderbird" in message


def test_oauth2_with_a_fallback_is_fine(tmp_path: Path) -> None:
    problems = warnings_of(
        tmp_path,
        """\
        domains: [example.com]
        incoming:
          - type: imap
            host: imap.example.com
            security: ssl
            auth: [OAuth2, password-cleartext]
        outgoing:
          - type: smtp
            host: smtp.example.com
            security: ssl
            auth: [OAuth2, password-cleartext]
        """,
    )
    assert problems == []


def test_no_imap_server_with_tls(tmp_path: Path) -> None:
    problems = warnings_of(
        tmp_path,
        """\
        domains: [example.com]
        incoming:
          - type: pop3
            host: pop.example.com
            security: ssl
          - type: imap
            host: imap.example.com
            security: none
            auth: password-encrypted
        outgoing:
          - type: smtp
            host: smtp.example.com
            security: ssl
        """,
    )
    assert where(problems) == [(3, "incoming"), (8, "incoming[1].security")]
    message = message_at(problems, 3, "incoming")
    assert "Thunderbird for Android cannot use this provider" in message


def test_several_warnings_in_one_file_are_all_given(tmp_path: Path) -> None:
    problems = warnings_of(
        tmp_path,
        """\
        domains: [example.com]
        incoming:
          - type: pop3
            host: pop.example.com
            security: none
        outgoing:
          - type: smtp
            host: smtp.example.com
            security: none
            port: 25
            auth: none
        """,
    )
    assert where(problems) == [
        (3, "incoming"),
        (3, "incoming[0].auth"),
        (5, "incoming[0].security"),
        (9, "outgoing[0].security"),
        (10, "outgoing[0].port"),
        (11, "outgoing[0].auth"),
    ]


def test_the_example_domains_are_clean() -> None:
    result = load_folder(EXAMPLES)
    assert [str(p) for p in result.problems] == []
    assert result.broken == ()
    assert len(result.providers) == result.files >= 2
    for provider in result.providers:
        assert lint(provider) == []
