"""`mail-autoconf probe`'s check of the OAuth issuer, against a small RFC 8414 issuer
served here over HTTPS on 127.0.0.1 (a free port, a test CA)."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml

from autoconf.cli import main
from autoconf.model import OAuth2
from autoconf.probe.oauth import metadata_url, probe_issuer


class Issuer:
    """An authorization server's metadata document, changed by the tests at will."""

    def __init__(self, tmp_path: Path) -> None:
        ca = trustme.CA()
        self.ca_file = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_file))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert("localhost").configure_cert(context)
        issuer = self
        self.asked: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 -- http.server's name
                issuer.asked.append(self.path)
                body = json.dumps(issuer.metadata).encode()
                found = self.path == "/.well-known/oauth-authorization-server"
                self.send_response(200 if found else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://localhost:{self.server.server_address[1]}"
        self.metadata: dict[str, object] = {
            "issuer": self.url,
            "authorization_endpoint": f"{self.url}/authorize",
            "token_endpoint": f"{self.url}/token",
            "code_challenge_methods_supported": ["S256"],
            "registration_endpoint": f"{self.url}/register",
        }
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def oauth(self, **changes: str) -> OAuth2:
        values = {
            "issuer": self.url,
            "scope": "IMAP SMTP",
            "auth_url": f"{self.url}/authorize",
            "token_url": f"{self.url}/token",
        } | changes
        return OAuth2(**values)

    def context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))


@pytest.fixture
def issuer(tmp_path: Path) -> Iterator[Issuer]:
    served = Issuer(tmp_path)
    yield served
    served.server.shutdown()
    served.server.server_close()
    served.thread.join(5)


def verdicts(issuer: Issuer, oauth: OAuth2) -> dict[str, str]:
    return {c.name: c.verdict for c in probe_issuer(oauth, "example.com", issuer.context(), 5)}


def test_metadata_urls() -> None:
    assert metadata_url("https://login.example.com") == (
        "https://login.example.com/.well-known/oauth-authorization-server"
    )
    assert metadata_url("https://login.example.com/tenant1/") == (
        "https://login.example.com/.well-known/oauth-authorization-server/tenant1"
    )


def test_an_issuer_that_matches_the_file(issuer: Issuer) -> None:
    assert verdicts(issuer, issuer.oauth()) == {
        "metadata": "ok",
        "issuer": "ok",
        "authorization": "ok",
        "token": "ok",
        "pkce": "ok",
        "registration": "ok",
    }
    assert issuer.asked == ["/.well-known/oauth-authorization-server"]


def test_every_mismatch_is_named(issuer: Issuer) -> None:
    issuer.metadata["code_challenge_methods_supported"] = ["plain"]
    del issuer.metadata["registration_endpoint"]
    found = verdicts(issuer, issuer.oauth(token_url=f"{issuer.url}/other-token"))
    assert found == {
        "metadata": "ok",
        "issuer": "ok",
        "authorization": "ok",
        "token": "FAIL",
        "pkce": "FAIL",
        "registration": "note",  # reported, not a failure
    }


def test_an_issuer_not_trusted_or_not_there(issuer: Issuer) -> None:
    checks = probe_issuer(issuer.oauth(), "example.com", ssl.create_default_context(), 5)
    assert [(c.name, c.verdict) for c in checks] == [("metadata", "FAIL")]
    assert "certificate" in checks[0].detail
    moved = issuer.oauth(issuer=f"{issuer.url}/tenant")
    checks = probe_issuer(moved, "example.com", issuer.context(), 5)
    assert [(c.name, c.verdict, c.detail.split(": ")[-1]) for c in checks] == [
        ("metadata", "FAIL", "HTTP 404")
    ]


def test_probe_prints_the_issuer_checks(
    issuer: Issuer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "domains"
    folder.mkdir()
    document = {
        "domains": ["example.com"],
        "incoming": [{"type": "imap", "host": "localhost", "port": 1, "security": "ssl"}],
        "outgoing": [{"type": "smtp", "host": "localhost", "port": 1, "security": "ssl"}],
        "oauth2": {
            "issuer": issuer.url,
            "scope": "IMAP SMTP",
            "auth_url": f"{issuer.url}/authorize",
            "token_url": f"{issuer.url}/wrong",
        },
    }
    (folder / "p.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    code = main(
        ["probe", "example.com", "--domains", str(folder), "--ca-file", str(issuer.ca_file)]
    )
    out = capsys.readouterr().out.splitlines()
    assert code == 1
    start = out.index(f"oauth2 issuer {issuer.url}")
    rows = [line.split()[:2] for line in out[start + 1 :]]
    assert rows == [
        ["metadata", "ok"],
        ["issuer", "ok"],
        ["authorization", "ok"],
        ["token", "FAIL"],
        ["pkce", "ok"],
        ["registration", "ok"],
    ]
