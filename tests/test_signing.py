"""Signed Apple profiles (README.md#settings AUTOCONF_SIGN_*,
docs/http.md#apple-configuration-profile): CMS SignedData, DER, content attached,
SHA-256, chain included, and checked once at start-up.

A test PKI (root CA, intermediate CA, leaf) is made with ``cryptography``; every
signature is judged by the openssl command line against the root alone, so the
intermediate can only come from inside the CMS.
"""

from __future__ import annotations

import datetime as dt
import plistlib
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from autoconf.address import parse_address
from autoconf.app import create_app
from autoconf.cli import main
from autoconf.render import compile_provider, mobileconfig
from autoconf.settings import Settings, SettingsError
from autoconf.signing import load_signer
from tests.conftest import EXAMPLES
from tests.helpers import provider_from_yaml

OPENSSL = "/usr/bin/openssl"
TIMEOUT = 20
NOW = dt.datetime.now(dt.UTC)
DAY = dt.timedelta(days=1)
SIGN_VARS = ("AUTOCONF_SIGN_CERT", "AUTOCONF_SIGN_KEY", "AUTOCONF_SIGN_CHAIN")

# ---------------------------------------------------------------------------
# A test PKI (also used by tests/test_web_mobileconfig.py)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mail-autoconf tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert_pem(*certificates: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


def _certificate(
    subject: str,
    public_key: object,
    issuer: x509.Certificate | None,
    issuer_key: object,
    *,
    ca: bool,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer.subject if issuer is not None else _name(subject))
        .public_key(public_key)  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(public_key),  # type: ignore[arg-type]
            critical=False,
        )
    )
    if ca:
        usage = dict(key_cert_sign=True, crl_sign=True, digital_signature=False)
    else:  # a leaf: digitalSignature only, and no extended key usage at all
        usage = dict(key_cert_sign=False, crl_sign=False, digital_signature=True)
    builder = builder.add_extension(
        x509.KeyUsage(
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            encipher_only=False,
            decipher_only=False,
            **usage,
        ),
        critical=True,
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())  # type: ignore[arg-type]


@dataclass(frozen=True)
class Pki:
    folder: Path
    root: Path  # root CA certificate: the only trust anchor given to openssl
    intermediate: Path  # intermediate CA certificate, for AUTOCONF_SIGN_CHAIN
    leaf: Path  # RSA leaf certificate
    leaf_key: Path
    fullchain: Path  # leaf + intermediate in one file
    ec_leaf: Path  # EC (P-256) leaf certificate
    ec_key: Path
    other_key: Path  # a key that belongs to no certificate here
    expired: Path  # expired leaf, with expired_key
    expired_key: Path
    future: Path  # leaf not valid yet, with future_key
    future_key: Path

    def settings(self, **overrides: object) -> Settings:
        values: dict[str, object] = {
            "domains": EXAMPLES,
            "sign_cert": self.leaf,
            "sign_key": self.leaf_key,
            "sign_chain": self.intermediate,
        }
        values.update(overrides)
        return Settings(**values)  # type: ignore[arg-type]


def build_pki(folder: Path) -> Pki:
    folder.mkdir(parents=True, exist_ok=True)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = _certificate(
        "Test Root CA",
        root_key.public_key(),
        None,
        root_key,
        ca=True,
        not_before=NOW - 10 * DAY,
        not_after=NOW + 3650 * DAY,
    )
    inter_key = ec.generate_private_key(ec.SECP256R1())
    inter = _certificate(
        "Test Intermediate CA",
        inter_key.public_key(),
        root,
        root_key,
        ca=True,
        not_before=NOW - 10 * DAY,
        not_after=NOW + 1825 * DAY,
    )

    def leaf(name: str, key: object, before: dt.datetime, after: dt.datetime) -> x509.Certificate:
        public = key.public_key()  # type: ignore[attr-defined]
        return _certificate(
            name, public, inter, inter_key, ca=False, not_before=before, not_after=after
        )

    leaf_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    other_key = ec.generate_private_key(ec.SECP256R1())
    expired_key = ec.generate_private_key(ec.SECP256R1())
    future_key = ec.generate_private_key(ec.SECP256R1())
    rsa_leaf = leaf("profiles.example.com", leaf_key, NOW - DAY, NOW + 365 * DAY)
    files = {
        "root.pem": _cert_pem(root),
        "intermediate.pem": _cert_pem(inter),
        "leaf.pem": _cert_pem(rsa_leaf),
        "leaf.key": _key_pem(leaf_key),
        "fullchain.pem": _cert_pem(rsa_leaf, inter),
        "ec-leaf.pem": _cert_pem(leaf("ec.example.com", ec_key, NOW - DAY, NOW + 365 * DAY)),
        "ec-leaf.key": _key_pem(ec_key),
        "other.key": _key_pem(other_key),
        "expired.pem": _cert_pem(
            leaf("expired.example.com", expired_key, NOW - 30 * DAY, NOW - DAY)
        ),
        "expired.key": _key_pem(expired_key),
        "future.pem": _cert_pem(leaf("future.example.com", future_key, NOW + DAY, NOW + 30 * DAY)),
        "future.key": _key_pem(future_key),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return Pki(
        folder=folder,
        root=folder / "root.pem",
        intermediate=folder / "intermediate.pem",
        leaf=folder / "leaf.pem",
        leaf_key=folder / "leaf.key",
        fullchain=folder / "fullchain.pem",
        ec_leaf=folder / "ec-leaf.pem",
        ec_key=folder / "ec-leaf.key",
        other_key=folder / "other.key",
        expired=folder / "expired.pem",
        expired_key=folder / "expired.key",
        future=folder / "future.pem",
        future_key=folder / "future.key",
    )


def openssl_verify(der: bytes, ca_file: Path, *extra: str) -> subprocess.CompletedProcess[bytes]:
    """``openssl cms -verify -inform DER -CAfile ca.pem``: its stdout is the signed content."""
    return subprocess.run(
        [OPENSSL, "cms", "-verify", "-inform", "DER", "-CAfile", str(ca_file), *extra],
        input=der,
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
    )


def verified_content(der: bytes, ca_file: Path, *extra: str) -> bytes:
    result = openssl_verify(der, ca_file, *extra)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert b"Verification successful" in result.stderr
    return result.stdout


def openssl_print(der: bytes) -> str:
    result = subprocess.run(
        [OPENSSL, "cms", "-cmsout", "-print", "-inform", "DER"],
        input=der,
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout.decode("utf-8", "replace")


# ---------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return build_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def unsigned() -> bytes:
    """The unsigned profile of alice@example.com from the example file."""
    text = (EXAMPLES / "example.com.yaml").read_text(encoding="utf-8")
    compiled = compile_provider(provider_from_yaml(text)).mobileconfig
    return mobileconfig.render(compiled, parse_address("alice@example.com"))


@pytest.fixture
def no_sign_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in SIGN_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def sign_with(settings: Settings, data: bytes) -> bytes:
    signer = load_signer(settings)
    assert signer is not None
    return signer.sign(data)


# ---------------------------------------------------------------------------
# Signing


def test_no_signing_settings_no_signer() -> None:
    assert load_signer(Settings(domains=EXAMPLES)) is None


def test_openssl_verifies_against_the_root_and_gives_back_the_plist(
    pki: Pki, unsigned: bytes
) -> None:
    der = sign_with(pki.settings(), unsigned)
    assert der[:1] == b"\x30"  # DER, not PEM or S/MIME text
    assert b"-----BEGIN" not in der and b"MIME-Version" not in der
    content = verified_content(der, pki.root)
    assert content == unsigned
    assert plistlib.loads(content) == plistlib.loads(unsigned)


def test_without_the_chain_openssl_cannot_build_the_path(pki: Pki, unsigned: bytes) -> None:
    """The control for the test above: the intermediate really comes from the CMS."""
    der = sign_with(pki.settings(sign_chain=None), unsigned)
    assert openssl_verify(der, pki.root).returncode != 0
    # ... while the signature itself is fine with the intermediate as the anchor.
    assert verified_content(der, pki.intermediate, "-partial_chain") == unsigned


@pytest.mark.parametrize("where", ["content", "signature", "certificate"])
def test_one_byte_changed_fails_verification(pki: Pki, unsigned: bytes, where: str) -> None:
    der = sign_with(pki.settings(), unsigned)
    if where == "content":
        index = der.index(b"imap.example.com")  # content attached: the plist is inside
    elif where == "signature":
        index = len(der) - 5
    else:
        index = der.index(b"profiles.example.com")  # the leaf's subject
    changed = bytearray(der)
    changed[index] ^= 0x01
    assert bytes(changed) != der
    result = openssl_verify(bytes(changed), pki.root)
    assert result.returncode != 0
    assert b"Verification successful" not in result.stderr


def test_signed_data_is_sha256_with_content_and_chain(pki: Pki, unsigned: bytes) -> None:
    der = sign_with(pki.settings(), unsigned)
    printed = openssl_print(der)
    assert "contentType: pkcs7-signedData" in printed
    assert "eContentType: pkcs7-data" in printed
    # The SignedData's digestAlgorithms set and the SignerInfo's digestAlgorithm.
    lines = [line.strip() for line in printed.splitlines()]
    digests = [
        following.removeprefix("algorithm:").strip()
        for line, following in zip(lines, lines[1:], strict=False)
        if line in ("digestAlgorithms:", "digestAlgorithm:")
    ]
    assert len(digests) >= 2, printed
    assert all(d.startswith("sha256 ") for d in digests), digests
    # Leaf and intermediate are in the SignedData; the root is not needed there.
    certificates = pkcs7.load_der_pkcs7_certificates(der)
    subjects = {
        c.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value for c in certificates
    }
    assert {"profiles.example.com", "Test Intermediate CA"} <= subjects


def test_full_chain_cert_file_needs_no_chain_setting(pki: Pki, unsigned: bytes) -> None:
    der = sign_with(pki.settings(sign_cert=pki.fullchain, sign_chain=None), unsigned)
    assert verified_content(der, pki.root) == unsigned


def test_ec_key_signs_too(pki: Pki, unsigned: bytes) -> None:
    der = sign_with(pki.settings(sign_cert=pki.ec_leaf, sign_key=pki.ec_key), unsigned)
    assert verified_content(der, pki.root) == unsigned
    assert "ecdsa" in openssl_print(der).lower()


def test_content_is_binary_exact(pki: Pki) -> None:
    """The plist goes in byte for byte: no line-ending canonicalisation."""
    data = b"<plist>\r\nline\nother\r\n\xc3\xa9</plist>\n"
    der = sign_with(pki.settings(), data)
    assert verified_content(der, pki.root) == data


# ---------------------------------------------------------------------------
# Refusals: SettingsError naming the file and the reason


def _missing(pki: Pki) -> Path:
    return pki.folder / "does-not-exist.pem"


def _garbage(pki: Pki) -> Path:
    path = pki.folder / "garbage.pem"
    path.write_bytes(b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n")
    return path


def _garbage_key(pki: Pki) -> Path:
    path = pki.folder / "garbage.key"
    path.write_text("this is not a key\n")
    return path


def _ed25519_key(pki: Pki) -> Path:
    path = pki.folder / "ed25519.key"
    key = ed25519.Ed25519PrivateKey.generate()
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


REFUSALS = {
    # name: (settings overrides, the file named, words of the reason)
    "key of another certificate": (
        lambda p: {"sign_key": p.other_key},
        lambda p: p.other_key,
        ("belong",),
    ),
    "expired certificate": (
        lambda p: {"sign_cert": p.expired, "sign_key": p.expired_key},
        lambda p: p.expired,
        ("expired",),
    ),
    "not yet valid": (
        lambda p: {"sign_cert": p.future, "sign_key": p.future_key},
        lambda p: p.future,
        ("not valid before",),
    ),
    "missing cert file": (
        lambda p: {"sign_cert": _missing(p)},
        _missing,
        ("cannot read", "No such file"),
    ),
    "missing key file": (
        lambda p: {"sign_key": _missing(p)},
        _missing,
        ("cannot read", "No such file"),
    ),
    "missing chain file": (
        lambda p: {"sign_chain": _missing(p)},
        _missing,
        ("cannot read", "No such file"),
    ),
    "unreadable cert (a folder)": (
        lambda p: {"sign_cert": p.folder},
        lambda p: p.folder,
        ("cannot read",),
    ),
    "garbage cert PEM": (
        lambda p: {"sign_cert": _garbage(p)},
        _garbage,
        ("certificate",),
    ),
    "garbage key PEM": (
        lambda p: {"sign_key": _garbage_key(p)},
        _garbage_key,
        ("private key",),
    ),
    "key file given as cert": (
        lambda p: {"sign_cert": p.leaf_key},
        lambda p: p.leaf_key,
        ("certificate",),
    ),
    "garbage chain PEM": (
        lambda p: {"sign_chain": _garbage(p)},
        _garbage,
        ("certificate",),
    ),
    "ed25519 key": (
        lambda p: {"sign_key": _ed25519_key(p)},
        _ed25519_key,
        ("RSA",),
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_load_signer_refuses(pki: Pki, case: str) -> None:
    overrides, named, words = REFUSALS[case]
    with pytest.raises(SettingsError) as caught:
        load_signer(pki.settings(**overrides(pki)))
    message = str(caught.value)
    assert str(named(pki)) in message
    for word in words:
        assert word in message


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"sign_key": None, "sign_chain": None}, "AUTOCONF_SIGN_KEY"),
        ({"sign_cert": None, "sign_chain": None}, "AUTOCONF_SIGN_CERT"),
        ({"sign_cert": None, "sign_key": None}, "AUTOCONF_SIGN_CERT"),
    ],
    ids=["cert without key", "key without cert", "chain alone"],
)
def test_load_signer_refuses_half_a_pair(
    pki: Pki, overrides: dict[str, object], variable: str
) -> None:
    with pytest.raises(SettingsError, match=variable):
        load_signer(pki.settings(**overrides))


@pytest.mark.parametrize("case", ["key of another certificate", "expired certificate"])
def test_create_app_refuses_to_start(pki: Pki, case: str) -> None:
    overrides, named, _ = REFUSALS[case]
    with pytest.raises(SettingsError) as caught:
        create_app(pki.settings(**overrides(pki)))
    assert str(named(pki)) in str(caught.value)


def test_create_app_refuses_cert_without_key(pki: Pki) -> None:
    with pytest.raises(SettingsError, match="AUTOCONF_SIGN_KEY"):
        create_app(pki.settings(sign_key=None))


def test_create_app_starts_with_a_good_pair(pki: Pki) -> None:
    app = create_app(pki.settings())
    response = app.test_client().get("/mobileconfig?emailaddress=alice@example.com")
    assert response.status_code == 200


# ---------------------------------------------------------------------------
# The command line


def _set_env(monkeypatch: pytest.MonkeyPatch, cert: Path, key: Path, chain: Path | None) -> None:
    monkeypatch.setenv("AUTOCONF_SIGN_CERT", str(cert))
    monkeypatch.setenv("AUTOCONF_SIGN_KEY", str(key))
    if chain is None:
        monkeypatch.delenv("AUTOCONF_SIGN_CHAIN", raising=False)
    else:
        monkeypatch.setenv("AUTOCONF_SIGN_CHAIN", str(chain))


def test_check_reports_a_broken_pair(
    pki: Pki, no_sign_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _set_env(no_sign_env, pki.leaf, pki.other_key, pki.intermediate)
    assert main(["check", str(EXAMPLES)]) == 1
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert str(pki.other_key) in output
    assert "belong" in output


def test_check_reports_an_expired_certificate(
    pki: Pki, no_sign_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _set_env(no_sign_env, pki.expired, pki.expired_key, None)
    assert main(["check", str(EXAMPLES)]) == 1
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert str(pki.expired) in output
    assert "expired" in output


def test_check_is_clean_with_a_good_pair(
    pki: Pki, no_sign_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _set_env(no_sign_env, pki.leaf, pki.leaf_key, pki.intermediate)
    assert main(["check", str(EXAMPLES)]) == 0
    captured = capsys.readouterr()
    assert "signing" not in captured.out + captured.err


def test_serve_refuses_a_broken_pair_before_starting(
    pki: Pki, no_sign_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import autoconf.serving

    started: list[object] = []

    def run(*args: object, **kwargs: object) -> int:  # gunicorn must never be reached
        started.append(kwargs)
        return 0

    no_sign_env.setattr(autoconf.serving, "run", run)
    _set_env(no_sign_env, pki.leaf, pki.other_key, pki.intermediate)
    begin = time.monotonic()
    code = main(["serve", "--domains", str(EXAMPLES), "--bind", "127.0.0.1:0"])
    assert time.monotonic() - begin < 5
    assert code == 2
    assert started == []
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert str(pki.other_key) in output
    assert "belong" in output


def test_render_prints_a_signed_profile(
    pki: Pki,
    unsigned: bytes,
    no_sign_env: pytest.MonkeyPatch,
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    _set_env(no_sign_env, pki.leaf, pki.leaf_key, pki.intermediate)
    args = ["render", "alice@example.com", "--format", "mobileconfig", "--domains", str(EXAMPLES)]
    assert main(args) == 0
    der = capsysbinary.readouterr().out
    assert verified_content(der, pki.root) == unsigned


def test_render_refuses_a_broken_pair(
    pki: Pki, no_sign_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _set_env(no_sign_env, pki.expired, pki.expired_key, None)
    args = ["render", "alice@example.com", "--format", "mobileconfig", "--domains", str(EXAMPLES)]
    assert main(args) != 0
    captured = capsys.readouterr()
    assert str(pki.expired) in captured.err
    assert captured.out == ""


def test_an_expired_certificate_in_the_chain_is_refused(pki: Pki) -> None:
    # Profiles signed with it would fail verification on every device.
    with pytest.raises(SettingsError) as caught:
        load_signer(pki.settings(sign_chain=pki.expired))
    message = str(caught.value)
    assert message.startswith(f"AUTOCONF_SIGN_CHAIN: {pki.expired}:")
    assert "expired on" in message
