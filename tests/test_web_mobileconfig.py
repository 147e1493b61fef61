"""GET /mobileconfig through the test client (docs/http.md#apple-configuration-profile),
and `render --format mobileconfig`, which must print the same bytes."""

from __future__ import annotations

import plistlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client

from autoconf.app import Application
from autoconf.cli import main
from tests.conftest import EXAMPLES
from tests.helpers import provider_text, server_yaml
from tests.test_signing import SIGN_VARS, Pki, build_pki, openssl_verify, verified_content

CONTENT_TYPE = "application/x-apple-aspen-config"
MAIL = "com.apple.mail.managed"

UNUSABLE = provider_text(
    server_yaml("imap", "ssl", auth="[OAuth2, GSSAPI]"), server_yaml("smtp", "ssl")
).replace("domains: [example.com]", "domains: [oauth.example]")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return build_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def no_sign_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in SIGN_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def examples() -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in EXAMPLES.glob("*.yaml")}


def get(client: Client, address: str | None) -> Any:
    query = {} if address is None else {"emailaddress": address}
    return client.get("/mobileconfig", query_string=query)


def mail_payload(profile: dict[str, Any]) -> dict[str, Any]:
    (mail,) = [p for p in profile["PayloadContent"] if p["PayloadType"] == MAIL]
    return mail


# ---------------------------------------------------------------------------
# Unsigned


@pytest.mark.parametrize(
    ("address", "filename", "email"),
    [
        ("alice@example.com", "example.com.mobileconfig", "alice@example.com"),
        ("alice@example.net", "example.net.mobileconfig", "alice@example.net"),
        ("bob@müller.example", "xn--mller-kva.example.mobileconfig", "bob@xn--mller-kva.example"),
        (
            "bob@xn--mller-kva.example",
            "xn--mller-kva.example.mobileconfig",
            "bob@xn--mller-kva.example",
        ),
        ("carol@Shop.Example", "shop.example.mobileconfig", "carol@shop.example"),
    ],
)
def test_profile_download(client: Client, address: str, filename: str, email: str) -> None:
    response = get(client, address)
    assert response.status_code == 200
    assert response.mimetype == CONTENT_TYPE
    assert response.headers["Content-Disposition"] == f'attachment; filename="{filename}"'
    profile = plistlib.loads(response.data)
    assert profile["PayloadType"] == "Configuration"
    assert mail_payload(profile)["EmailAddress"] == email
    for key, value in _walk(profile):
        assert not ("password" in key.lower() and isinstance(value, str)), key


def _walk(value: Any) -> Any:
    if isinstance(value, dict):
        for key, item in value.items():
            yield key, item
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)


def test_two_downloads_are_byte_identical(client: Client) -> None:
    first = get(client, "alice@example.com")
    second = get(client, "alice@example.com")
    assert first.status_code == second.status_code == 200
    assert first.data == second.data


def test_another_address_gets_other_identifiers(client: Client) -> None:
    alice = plistlib.loads(get(client, "alice@example.com").data)
    bob = plistlib.loads(get(client, "bob@example.com").data)
    assert alice["PayloadUUID"] != bob["PayloadUUID"]
    assert alice["PayloadIdentifier"] != bob["PayloadIdentifier"]
    assert mail_payload(alice)["PayloadUUID"] != mail_payload(bob)["PayloadUUID"]
    # The case of the address does not make a second profile.
    upper = plistlib.loads(get(client, "ALICE@Example.com").data)
    assert upper["PayloadUUID"] == alice["PayloadUUID"]
    assert upper["PayloadIdentifier"] == alice["PayloadIdentifier"]


@pytest.mark.parametrize("query", ["", "?emailaddress=", "?other=alice@example.com"])
def test_missing_address_is_400(client: Client, query: str) -> None:
    response = client.get(f"/mobileconfig{query}", headers={"Host": "autoconfig.example.com"})
    assert response.status_code == 400
    assert response.mimetype == "text/plain"
    assert response.get_data(as_text=True).strip()
    assert "Content-Disposition" not in response.headers


@pytest.mark.parametrize(
    "address",
    ["alice", "@example.com", "alice@", "alice@@example.com", "a b@example.com", "alice@localhost"],
)
def test_malformed_address_is_400(client: Client, address: str) -> None:
    response = get(client, address)
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert text.strip() and "\n" not in text.strip()  # a one-line reason


def test_unknown_domain_is_404(client: Client) -> None:
    response = get(client, "alice@unknown.example")
    assert response.status_code == 404
    assert "unknown.example" in response.get_data(as_text=True)


def test_provider_apple_mail_cannot_use_is_404_with_reason(
    make_app: Callable[..., Application],
) -> None:
    client = make_app({"oauth.yaml": UNUSABLE}).test_client()
    response = get(client, "alice@oauth.example")
    assert response.status_code == 404
    assert response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    assert "Apple Mail" in text
    assert "Content-Disposition" not in response.headers


def test_hostile_local_part_over_http(client: Client) -> None:
    for local in ("o'brien", "a&b", '"<x>"'):
        response = get(client, f"{local}@example.com")
        assert response.status_code == 200, local
        assert mail_payload(plistlib.loads(response.data))["EmailAddress"] == f"{local}@example.com"


# ---------------------------------------------------------------------------
# Signed


def test_signed_profile_verifies_and_holds_the_unsigned_one(
    make_app: Callable[..., Application], client: Client, pki: Pki
) -> None:
    signed_app = make_app(
        examples(), sign_cert=pki.leaf, sign_key=pki.leaf_key, sign_chain=pki.intermediate
    )
    response = get(signed_app.test_client(), "alice@example.com")
    assert response.status_code == 200
    assert response.mimetype == CONTENT_TYPE
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="example.com.mobileconfig"'
    )
    assert response.data[:1] == b"\x30"  # DER
    unsigned = get(client, "alice@example.com").data
    content = verified_content(response.data, pki.root)
    assert plistlib.loads(content) == plistlib.loads(unsigned)
    assert content == unsigned


def test_signed_profile_changed_by_one_byte_fails(
    make_app: Callable[..., Application], pki: Pki
) -> None:
    signed_app = make_app(examples(), sign_cert=pki.fullchain, sign_key=pki.leaf_key)
    der = get(signed_app.test_client(), "alice@example.com").data
    assert verified_content(der, pki.root)
    changed = bytearray(der)
    changed[der.index(b"smtp.example.com")] ^= 0x20
    assert openssl_verify(bytes(changed), pki.root).returncode != 0


def test_signed_unusable_provider_is_still_404(
    make_app: Callable[..., Application], pki: Pki
) -> None:
    app = make_app({"oauth.yaml": UNUSABLE}, sign_cert=pki.leaf, sign_key=pki.leaf_key)
    response = get(app.test_client(), "alice@oauth.example")
    assert response.status_code == 404
    assert "Apple Mail" in response.get_data(as_text=True)


# ---------------------------------------------------------------------------
# The command line prints what the service answers


@pytest.mark.parametrize(
    "address", ["alice@example.com", "bob@müller.example", "o'brien@shop.example"]
)
def test_render_prints_the_same_bytes(
    client: Client,
    no_sign_env: pytest.MonkeyPatch,
    capsysbinary: pytest.CaptureFixture[bytes],
    address: str,
) -> None:
    args = ["render", address, "--format", "mobileconfig", "--domains", str(EXAMPLES)]
    assert main(args) == 0
    printed = capsysbinary.readouterr().out
    answer = get(client, address)
    assert answer.status_code == 200
    assert printed == answer.data


def test_render_unusable_provider_says_why(
    tmp_path: Path, no_sign_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "oauth.yaml").write_text(UNUSABLE, encoding="utf-8")
    args = ["render", "alice@oauth.example", "--format", "mobileconfig", "--domains", str(tmp_path)]
    assert main(args) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "Apple Mail" in captured.err


def test_render_signed_matches_the_signed_answer(
    make_app: Callable[..., Application],
    pki: Pki,
    no_sign_env: pytest.MonkeyPatch,
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    no_sign_env.setenv("AUTOCONF_SIGN_CERT", str(pki.leaf))
    no_sign_env.setenv("AUTOCONF_SIGN_KEY", str(pki.leaf_key))
    no_sign_env.setenv("AUTOCONF_SIGN_CHAIN", str(pki.intermediate))
    args = ["render", "alice@example.com", "--format", "mobileconfig", "--domains", str(EXAMPLES)]
    assert main(args) == 0
    printed = capsysbinary.readouterr().out
    signed_app = make_app(
        examples(), sign_cert=pki.leaf, sign_key=pki.leaf_key, sign_chain=pki.intermediate
    )
    answer = get(signed_app.test_client(), "alice@example.com").data
    # Signatures carry a signing time, so compare what they sign.
    assert verified_content(printed, pki.root) == verified_content(answer, pki.root)
