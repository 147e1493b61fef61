"""PACC (draft-ietf-mailmaint-pacc-03): the served JSON, and the DNS TXT record that
pins its bytes, recomputed here from what the service answered (docs/http.md#pacc)."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import dns.zone
import pytest
from werkzeug.test import Client

from autoconf.app import Application, create_app
from autoconf.cli import main
from autoconf.settings import Settings
from tests.conftest import EXAMPLES
from tests.helpers import provider_text, server_yaml

PATH = "/.well-known/user-agent-configuration.json"


def served_txt(capsys: pytest.CaptureFixture[str], domain: str, folder: Path) -> str:
    assert main(["dns", domain, "--domains", str(folder)]) == 0
    out = capsys.readouterr().out
    z = dns.zone.from_text(out, origin=f"{domain}.", relativize=False, check_origin=False)
    rdataset = z.find_rdataset(f"_ua-auto-config.{domain}.", "TXT")
    (record,) = list(rdataset)
    return b"".join(record.strings).decode()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "how",
    [
        {"headers": {"Host": "ua-auto-config.example.com"}},
        {"headers": {"Host": "example.com"}},
        {"query_string": {"domain": "Example.COM."}},
    ],
)
def test_the_document_by_each_way_of_naming_the_domain(
    client: Client, how: dict[str, object]
) -> None:
    response = client.get(PATH, **how)  # type: ignore[arg-type]
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert json.loads(response.data) == {
        "protocols": {
            "imap": {"host": "imap.example.com"},
            "pop3": {"host": "pop.example.com"},
            # -03's name for SMTP submission; the 465 server, not the 587 one before it.
            "submit": {"host": "smtp.example.com"},
        },
        "authentication": {"password": True},
        "info": {
            "provider": {"name": "Example Mail", "shortName": "Example"},
            "help": {"documentation": "https://example.com/help/mail"},
        },
    }


def test_the_dns_digest_is_that_of_the_served_bytes(
    client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    for domain in ("example.com", "example.net"):
        body = client.get(PATH, query_string={"domain": domain}).data
        assert body == client.get(PATH, headers={"Host": f"ua-auto-config.{domain}"}).data
        digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
        assert served_txt(capsys, domain, EXAMPLES) == f"v=UAAC1; a=sha256; d={digest}"


def test_the_body_is_a_function_of_the_file(tmp_path: Path) -> None:
    """Two apps on two copies of a file, keys written in another order: the same bytes."""
    text = provider_text(server_yaml("imap", "ssl"), server_yaml("smtp", "ssl")) + (
        "jmap: {url: 'https://jmap.%EMAILDOMAIN%/session'}\n"
        "oauth2: {issuer: login.example.com, scope: s,"
        " auth_url: 'https://login.example.com/a', token_url: 'https://login.example.com/t'}\n"
    )
    lines = text.splitlines()
    bodies = []
    for name, content in (("a", text), ("b", "\n".join([*reversed(lines[-2:]), *lines[:-2]]))):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "p.yaml").write_text(content + "\n")
        app = create_app(Settings(domains=folder))
        try:
            response = app.test_client().get(PATH, headers={"Host": "example.com"})
        finally:
            app.close()
        assert response.status_code == 200, response.data
        bodies.append(response.data)
    assert bodies[0] == bodies[1]
    assert json.loads(bodies[0])["protocols"]["jmap"] == {"url": "https://jmap.example.com/session"}
    assert json.loads(bodies[0])["authentication"] == {
        "oauth-public": {"issuer": "https://login.example.com"},
        "password": True,
    }


def test_what_pacc_cannot_carry_is_left_out_and_check_says_why(
    make_app: Callable[..., Application], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = provider_text(
        server_yaml("imap", "starttls") + server_yaml("pop3", "ssl"),
        server_yaml("smtp", "ssl", port=2465),
        "calendar: {url: 'https://dav.example.com/%EMAILADDRESS%/'}\n",
    )
    app = make_app({"p.yaml": text})
    data = json.loads(app.test_client().get(PATH, query_string={"domain": "example.com"}).data)
    assert data["protocols"] == {"pop3": {"host": "pop3.example.com"}}
    assert main(["check", str(tmp_path / "served")]) == 0
    notes = [line for line in capsys.readouterr().out.splitlines() if ": note: " in line]
    assert [line.split(": note: ")[1].split(":")[0] for line in notes] == [
        "PACC leaves out imap",
        "PACC leaves out submit",
        "PACC leaves out caldav",
    ]
    assert "starttls, not implicit TLS" in notes[0] and "port 2465, not 465" in notes[1]


@pytest.mark.parametrize(
    ("how", "status"),
    [
        ({"headers": {"Host": "ua-auto-config.unknown.example"}}, 404),
        ({"query_string": {"domain": "no_such..domain"}}, 400),
        ({"headers": {"Host": "ua-auto-config.example.org"}}, 404),  # nothing PACC can carry
    ],
)
def test_bad_requests(client: Client, how: dict[str, object], status: int) -> None:
    response = client.get(PATH, **how)  # type: ignore[arg-type]
    assert response.status_code == status
    assert response.data.endswith(b"\n") and b"Traceback" not in response.data
