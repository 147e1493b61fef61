"""Signing Apple profiles: CMS SignedData, DER, content attached, SHA-256, chain included.

The certificate, key and chain are read and checked once, at start-up: a pair
that does not match, an expired certificate or an unreadable file stops the
service with the file and the reason, instead of failing on every download.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs7

from autoconf.settings import Settings, SettingsError

SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class Signer:
    certificate: x509.Certificate
    key: SigningKey
    chain: tuple[x509.Certificate, ...]

    def sign(self, data: bytes) -> bytes:
        builder = pkcs7.PKCS7SignatureBuilder().set_data(data)
        builder = builder.add_signer(self.certificate, self.key, hashes.SHA256())
        for certificate in self.chain:
            builder = builder.add_certificate(certificate)
        # Binary: the plist goes in byte for byte, not turned into MIME text.
        return builder.sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])

    @property
    def subject(self) -> str:
        return self.certificate.subject.rfc4514_string()


def _public(key: CertificatePublicKeyTypes) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _read(path: Path, variable: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SettingsError(f"{variable}: {path}: cannot read ({exc.strerror or exc})") from None


def _certificates(path: Path, variable: str) -> list[x509.Certificate]:
    try:
        certificates = x509.load_pem_x509_certificates(_read(path, variable))
    except ValueError as exc:
        raise SettingsError(f"{variable}: {path}: not a PEM certificate ({exc})") from None
    if not certificates:
        raise SettingsError(f"{variable}: {path}: no certificate in the file")
    return certificates


def load_signer(settings: Settings, now: datetime | None = None) -> Signer | None:
    """The signer the settings name, None when signing is off; SettingsError when broken."""
    if settings.sign_cert is None and settings.sign_key is None:
        if settings.sign_chain is not None:
            raise SettingsError("AUTOCONF_SIGN_CHAIN is set without AUTOCONF_SIGN_CERT and _KEY")
        return None
    if settings.sign_cert is None or settings.sign_key is None:
        missing = "AUTOCONF_SIGN_KEY" if settings.sign_key is None else "AUTOCONF_SIGN_CERT"
        raise SettingsError(f"{missing} is needed too: signing takes a certificate and its key")

    cert_path, key_path = settings.sign_cert, settings.sign_key
    certificate, *rest = _certificates(cert_path, "AUTOCONF_SIGN_CERT")
    try:
        key = serialization.load_pem_private_key(_read(key_path, "AUTOCONF_SIGN_KEY"), None)
    except (ValueError, TypeError) as exc:
        raise SettingsError(
            f"AUTOCONF_SIGN_KEY: {key_path}: not an unencrypted PEM private key ({exc})"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise SettingsError(f"AUTOCONF_SIGN_KEY: {key_path}: only RSA and EC keys can sign")
    if _public(key.public_key()) != _public(certificate.public_key()):
        raise SettingsError(
            f"AUTOCONF_SIGN_KEY: {key_path}: does not belong to the certificate in {cert_path}"
        )

    now = now or datetime.now(UTC)
    _check_dates(certificate, f"AUTOCONF_SIGN_CERT: {cert_path}", now)
    # A full-chain file (as Let's Encrypt writes it) carries the chain itself.
    chain = [(c, f"AUTOCONF_SIGN_CERT: {cert_path}") for c in rest]
    if settings.sign_chain is not None:
        where = f"AUTOCONF_SIGN_CHAIN: {settings.sign_chain}"
        chain += [(c, where) for c in _certificates(settings.sign_chain, "AUTOCONF_SIGN_CHAIN")]
    for link, where in chain:  # an expired intermediate fails every verification too
        _check_dates(link, where, now)
    return Signer(certificate, key, tuple(c for c, _ in chain))


def _check_dates(certificate: x509.Certificate, where: str, now: datetime) -> None:
    subject = certificate.subject.rfc4514_string()
    if certificate.not_valid_after_utc < now:
        raise SettingsError(
            f"{where}: {subject} expired on {certificate.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
        )
    if certificate.not_valid_before_utc > now:
        raise SettingsError(
            f"{where}: {subject} is not valid before "
            f"{certificate.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
        )
