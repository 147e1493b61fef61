"""The ``mail-autoconf`` command (docs/cli.md), through ``autoconf.cli.main``.

``render`` must print exactly what the service answers: its bytes are compared
with the test client's answer to the same request.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from lxml import etree
from werkzeug.test import Client

from autoconf.app import create_app
from autoconf.cli import main
from autoconf.settings import Settings
from tests.helpers import BROKEN_YAML

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "tests" / "data" / "examples"  # a copy of domains/, which an admin may change

NS_OUTLOOK_REQUEST = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
NS = {
    "r": "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006",
    "a": "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a",
}
PROBLEM = re.compile(r"(?P<file>.+):(?P<line>\d+): (?P<path>[^ ]+): (?P<message>.+)")
SUMMARY = re.compile(
    r"(?P<files>\d+) files?, (?P<providers>\d+) providers?, (?P<domains>\d+) domains?"
    r"(, \d+ contested)?: (?P<errors>\d+) errors?, (?P<warnings>\d+) warnings?"
    r"(?P<signing>, signing not set up)?"
)


# Valid, but SMTP on port 25 is a lint warning (docs/domain-files.md#warnings).
WARNING_YAML = """\
domains:
  - warn.example
incoming:
  - type: imap
    host: imap.warn.example
    security: ssl
outgoing:
  - type: smtp
    host: smtp.warn.example
    port: 25
    security: starttls
"""


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command reads AUTOCONF_* variables; the tests' own options must decide."""
    for name in (
        "AUTOCONF_DOMAINS",
        "AUTOCONF_PUBLIC_HOST",
        "AUTOCONF_PROXY_HOPS",
        "AUTOCONF_LOG_ADDRESSES",
    ):
        monkeypatch.delenv(name, raising=False)


def _folder(tmp_path: Path, **extra: str) -> Path:
    folder = tmp_path / "domains"
    shutil.copytree(EXAMPLES, folder)
    for name, text in extra.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def _summary(text: str) -> re.Match[str]:
    matches = [m for line in text.splitlines() if (m := SUMMARY.fullmatch(line.strip()))]
    assert len(matches) == 1, text
    return matches[0]


def _problems(text: str) -> list[re.Match[str]]:
    return [m for line in text.splitlines() if (m := PROBLEM.fullmatch(line))]


# ---------------------------------------------------------------------------
# check


def test_check_examples_is_clean(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(EXAMPLES)]) == 0
    captured = capsys.readouterr()
    summary = _summary(captured.out + captured.err)
    assert summary["files"] == str(len(list(EXAMPLES.glob("*.yaml"))))
    assert summary["providers"] == "2"
    assert summary["domains"] == "6"
    assert (summary["errors"], summary["warnings"]) == ("0", "0")
    assert _problems(captured.out + captured.err) == []


def test_check_takes_files_and_counts_in_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A new file is checked before it is copied in; one of a thing is singular."""
    new = tmp_path / "new.yaml"
    new.write_text(WARNING_YAML, encoding="utf-8")
    assert main(["check", str(new)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == "1 file, 1 provider, 1 domain: 0 errors, 1 warning"
    broken = tmp_path / "broken.yaml"
    broken.write_text(BROKEN_YAML, encoding="utf-8")
    assert main(["check", str(new), str(broken)]) == 1
    assert _summary(capsys.readouterr().out)["files"] == "2"
    assert main(["check", str(tmp_path / "missing.yaml")]) == 2


def test_a_signing_failure_shows_in_the_summary(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AUTOCONF_SIGN_CERT", str(tmp_path / "none.pem"))
    monkeypatch.setenv("AUTOCONF_SIGN_KEY", str(tmp_path / "none.key"))
    assert main(["check", str(EXAMPLES)]) == 1
    summary = _summary(capsys.readouterr().out)
    assert (summary["errors"], summary["signing"]) == ("0", ", signing not set up")


def test_check_reads_the_folder_from_the_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTOCONF_DOMAINS", str(EXAMPLES))
    assert main(["check"]) == 0
    captured = capsys.readouterr()
    assert _summary(captured.out + captured.err)["errors"] == "0"


def test_check_reports_every_error_as_file_line_path_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _folder(tmp_path, **{"broken.yaml": BROKEN_YAML})
    assert main(["check", str(folder)]) == 1
    captured = capsys.readouterr()
    problems = _problems(captured.out + captured.err)
    assert {(Path(p["file"]).name, int(p["line"]), p["path"]) for p in problems} == {
        ("broken.yaml", 9, "incoming[0].port"),
        ("broken.yaml", 11, "outgoing[0].host"),
        ("broken.yaml", 12, "outgoing[0].hots"),
    }
    assert all(Path(p["file"]) == folder / "broken.yaml" for p in problems)
    messages = {p["path"]: p["message"] for p in problems}
    assert "65535" in messages["incoming[0].port"]
    assert "did you mean 'host'" in messages["outgoing[0].hots"]
    summary = _summary(captured.out + captured.err)
    assert summary["errors"] == "3"
    assert summary["files"] == "3"
    assert summary["providers"] == "2"  # the other files still count


def test_check_warnings_alone_exit_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _folder(tmp_path, **{"warn.yaml": WARNING_YAML})
    assert main(["check", str(folder)]) == 0
    captured = capsys.readouterr()
    problems = _problems(captured.out + captured.err)
    assert [(Path(p["file"]).name, int(p["line"]), p["path"]) for p in problems] == [
        ("warn.yaml", 10, "outgoing[0].port")
    ]
    assert "25" in problems[0]["message"]
    summary = _summary(captured.out + captured.err)
    assert (summary["errors"], summary["warnings"]) == ("0", "1")


def test_check_warnings_with_strict_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _folder(tmp_path, **{"warn.yaml": WARNING_YAML})
    assert main(["check", str(folder), "--strict"]) == 1
    captured = capsys.readouterr()
    assert len(_problems(captured.out + captured.err)) == 1


def test_check_strict_on_a_clean_folder_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--strict", str(EXAMPLES)]) == 0


def test_check_second_claim_of_a_domain_names_both_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    second = WARNING_YAML.replace("warn.example", "example.net").replace("port: 25", "port: 587")
    folder = _folder(tmp_path, **{"zz-second.yaml": second})
    assert main(["check", str(folder)]) == 1
    captured = capsys.readouterr()
    problems = _problems(captured.out + captured.err)
    # A first start: neither file serves the domain both list, and each names the other.
    assert len(problems) == 2, captured
    by_file = {Path(p["file"]).name: p for p in problems}
    assert "zz-second.yaml" in by_file["example.com.yaml"]["message"]
    assert "example.com.yaml" in by_file["zz-second.yaml"]["message"]
    assert int(by_file["zz-second.yaml"]["line"]) == 2
    assert "example.net: claimed by example.com.yaml, zz-second.yaml; served by none" in (
        captured.out
    )


def test_check_missing_folder_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "no-such-folder"
    assert main(["check", str(missing)]) == 2
    captured = capsys.readouterr()
    assert str(missing) in captured.err


# ---------------------------------------------------------------------------
# render: the same bytes the service answers


def _client(folder: Path) -> Client:
    return create_app(Settings(domains=folder)).test_client()


def _pox_body(address: str) -> bytes:
    root = etree.Element(f"{{{NS_OUTLOOK_REQUEST}}}Autodiscover", nsmap={None: NS_OUTLOOK_REQUEST})  # type: ignore[dict-item]
    request = etree.SubElement(root, f"{{{NS_OUTLOOK_REQUEST}}}Request")
    etree.SubElement(request, f"{{{NS_OUTLOOK_REQUEST}}}EMailAddress").text = address
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")


def _render(capsysbinary: pytest.CaptureFixture[bytes], *args: str) -> tuple[int, bytes, bytes]:
    code = main(["render", *args])
    captured = capsysbinary.readouterr()
    return code, captured.out, captured.err


# address, then what domains/*.yaml make of it: the first IMAP host and its login.
EXPECTED = {
    "alice@example.com": ("imap.example.com", "alice@example.com"),
    "Bob.Smith@EXAMPLE.NET": ("imap.example.com", "Bob.Smith@example.net"),
    "carol@example.org": ("mail.hosting.example.org", "carol"),
    "dave@müller.example": ("mail.hosting.example.org", "dave"),
    "gina@a.customers.example.org": ("mail.hosting.example.org", "gina"),
    "o'hara&co@example.org": ("mail.hosting.example.org", "o'hara&co"),
}
ADDRESSES = list(EXPECTED)


@pytest.mark.parametrize("address", ADDRESSES)
def test_render_autoconfig_equals_the_service(
    capsysbinary: pytest.CaptureFixture[bytes], address: str
) -> None:
    code, out, _ = _render(
        capsysbinary, address, "--format", "autoconfig", "--domains", str(EXAMPLES)
    )
    assert code == 0
    answer = _client(EXAMPLES).get("/mail/config-v1.1.xml", query_string={"emailaddress": address})
    assert answer.status_code == 200
    assert out == answer.data

    root = etree.fromstring(out)
    assert root.tag == "clientConfig"
    (imap,) = root.xpath("/clientConfig/emailProvider/incomingServer[@type='imap']")
    assert (imap.findtext("hostname"), imap.findtext("username")) == EXPECTED[address]


def test_render_default_format_is_autoconfig(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    code, out, _ = _render(capsysbinary, "alice@example.com", "--domains", str(EXAMPLES))
    assert code == 0
    root = etree.fromstring(out)
    assert root.tag == "clientConfig"
    assert root.xpath("//incomingServer[1]/hostname/text()")[0] == "imap.example.com"
    assert root.xpath("//incomingServer[1]/username/text()")[0] == "alice@example.com"


@pytest.mark.parametrize("address", ADDRESSES)
def test_render_autodiscover_equals_the_service(
    capsysbinary: pytest.CaptureFixture[bytes], address: str
) -> None:
    code, out, _ = _render(
        capsysbinary, address, "--format", "autodiscover", "--domains", str(EXAMPLES)
    )
    assert code == 0
    answer = _client(EXAMPLES).post(
        "/autodiscover/autodiscover.xml",
        data=_pox_body(address),
        content_type="text/xml; charset=utf-8",
    )
    assert answer.status_code == 200
    assert out == answer.data

    root = etree.fromstring(out)
    protocols = root.xpath("/r:Autodiscover/a:Response/a:Account/a:Protocol", namespaces=NS)
    imap = protocols[0]
    assert imap.findtext("a:Type", namespaces=NS) == "IMAP"
    got = (imap.findtext("a:Server", namespaces=NS), imap.findtext("a:LoginName", namespaces=NS))
    assert got == EXPECTED[address]


@pytest.mark.parametrize(
    ("address", "public_host"),
    [
        ("alice@example.com", "autodiscover.example.com"),
        ("carol@example.org", "mail.hosting.example.org"),
        ("dave@müller.example", "autoconf.example.net"),
    ],
)
def test_render_json_equals_the_service(
    capsysbinary: pytest.CaptureFixture[bytes], address: str, public_host: str
) -> None:
    code, out, _ = _render(
        capsysbinary,
        address,
        "--format",
        "json",
        "--domains",
        str(EXAMPLES),
        "--public-host",
        public_host,
    )
    assert code == 0
    service = create_app(Settings(domains=EXAMPLES, public_host=public_host)).test_client()
    answer = service.get(
        "/autodiscover/autodiscover.json",
        query_string={"Email": address, "Protocol": "AutodiscoverV1"},
    )
    assert answer.status_code == 200
    assert out == answer.data
    assert json.loads(out) == {
        "Protocol": "AutodiscoverV1",
        "Url": f"https://{public_host}/Autodiscover/Autodiscover.xml",
    }


def test_render_unknown_domain_exits_1(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    code, out, err = _render(capsysbinary, "alice@unknown.example", "--domains", str(EXAMPLES))
    assert code == 1
    assert out == b""
    assert b"unknown.example" in err


def test_render_domain_of_a_broken_file_exits_1(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    folder = _folder(tmp_path, **{"broken.yaml": BROKEN_YAML})
    code, out, _ = _render(capsysbinary, "alice@broken.example", "--domains", str(folder))
    assert code == 1
    assert out == b""
    # The good files still render.
    code, out, _ = _render(capsysbinary, "alice@example.com", "--domains", str(folder))
    assert code == 0
    assert etree.fromstring(out).tag == "clientConfig"


@pytest.mark.parametrize("fmt", ["autoconfig", "autodiscover", "json"])
@pytest.mark.parametrize("address", ["no-at-sign", "@example.com", "alice@localhost", "a..b@x.com"])
def test_render_malformed_address_exits_1(
    capsysbinary: pytest.CaptureFixture[bytes], address: str, fmt: str
) -> None:
    code, out, err = _render(capsysbinary, address, "--format", fmt, "--domains", str(EXAMPLES))
    assert code == 1
    assert out == b""
    assert err.strip() and len(err.strip().splitlines()) == 1


def test_render_missing_folder_exits_2(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    code, out, err = _render(capsysbinary, "alice@example.com", "--domains", str(tmp_path / "no"))
    assert code == 2
    assert out == b""
    assert err


def test_render_unknown_format_is_a_usage_error(
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    code, out, _ = _render(capsysbinary, "alice@example.com", "--format", "nonsense")
    assert code == 2
    assert out == b""


def test_serve_missing_folder_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--domains", str(tmp_path / "no"), "--bind", "127.0.0.1:1"]) == 2
    assert str(tmp_path / "no") in capsys.readouterr().err


# ---------------------------------------------------------------------------
# python -m autoconf


def test_python_dash_m_help_exits_0(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "autoconf", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    commands = {line.split()[0] for line in result.stdout.splitlines()[1:] if line.startswith("  ")}
    assert {"serve", "check", "render"} <= commands


def test_main_help_returns_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "render" in capsys.readouterr().out


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["no-such-command"]) == 2


def test_serve_on_a_busy_address_says_so_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["serve", "--domains", str(EXAMPLES), "--bind", f"127.0.0.1:{port}"])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.strip().splitlines() == [
        f"mail-autoconf serve: cannot listen on 127.0.0.1:{port}: address already in use; "
        "stop what uses it, or choose another --bind"
    ]
