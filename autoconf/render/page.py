"""The page for people who set up mail by hand (docs/http.md#the-page-for-people),
in English and German.

Jinja2 with autoescape: an address is always text, never markup. No script
and no inline style anywhere, so a strict Content-Security-Policy holds; the
QR code is inline SVG made by segno.
"""

from __future__ import annotations

from dataclasses import dataclass

import segno
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from autoconf.address import Address
from autoconf.model import Provider, Security, Server, ServerType, UserSettings
from autoconf.render.page_texts import LANGUAGES as LANGUAGES
from autoconf.render.page_texts import TEXTS
from autoconf.render.user import server_fields

CONTENT_TYPE = "text/html; charset=utf-8"
# Scripts: none. Styles: our own file. Forms: back to us. Nothing may frame us.
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
DEFAULT_LANGUAGE = "en"

_environment = Environment(
    loader=PackageLoader("autoconf", "templates"),
    autoescape=select_autoescape(default=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_TLS = {Security.SSL: "tls_ssl", Security.STARTTLS: "tls_starttls", Security.NONE: "tls_none"}
_PROTOCOLS = {ServerType.IMAP: "IMAP", ServerType.POP3: "POP3", ServerType.SMTP: "SMTP"}


@dataclass(frozen=True, slots=True)
class Row:
    protocol: str
    host: str
    port: int
    security: str
    username: str
    password: str


def _row(server: Server, address: Address, texts: dict[str, str], user: UserSettings | None) -> Row:
    # The host and login a lookup found, else the file's, as the other formats fill them.
    host, username = server_fields(server, server.type is ServerType.SMTP, address, user)
    return Row(
        protocol=_PROTOCOLS[server.type],
        host=host,
        port=server.port,
        security=texts[_TLS[server.security]],
        username=username if server.needs_login else "",
        password=texts[f"pw_{server.auth[0].value}"],
    )


def qr_svg(url: str) -> Markup:
    """The URL as a QR code, inline SVG without style attributes (the CSP allows none)."""
    svg = segno.make(url, error="m").svg_inline(scale=4, dark="#000", light="#fff", omitsize=True)
    return Markup(svg)  # noqa: S704 -- segno's own markup; the URL inside is escaped by segno


def form(language: str, *, error: str | None = None, value: str = "") -> str:
    return _environment.get_template("page.html").render(
        t=TEXTS[language],
        lang=language,
        other=_other(language),
        error=error,
        value=value,
        settings=None,
    )


def settings(
    language: str,
    provider: Provider,
    address: Address,
    *,
    profile_url: str | None,
    profile_link: str | None = None,
    signed: bool,
    user: UserSettings | None = None,
) -> str:
    """The settings to type for ``address``. ``profile_url`` is the Apple profile's
    absolute URL, for the QR code a phone scans; ``profile_link`` what the page's
    link points at (a relative URL stays on the origin the page came from; default:
    ``profile_url``). Both None when Apple Mail cannot use the provider."""
    texts = TEXTS[language]
    incoming = [_row(s, address, texts, user) for s in provider.served_incoming]
    outgoing = [_row(s, address, texts, user) for s in provider.served_outgoing]
    documentation = [
        (doc.url, dict(doc.text).get(language) or dict(doc.text).get("en") or doc.url)
        for doc in provider.documentation
    ]
    return _environment.get_template("page.html").render(
        t=texts,
        lang=language,
        other=_other(language),
        error=None,
        value=address.for_people,
        settings={
            "address": address.for_people,
            "provider": provider.name,
            "incoming": incoming,
            "outgoing": outgoing,
            "pop3": any(s.type is ServerType.POP3 for s in provider.served_incoming),
            "smtp_auth": any(s.needs_login for s in provider.served_outgoing),
            "profile_url": profile_url,
            "profile_link": profile_link or profile_url,
            "qr": qr_svg(profile_url) if profile_url else None,
            "signed": signed,
            "documentation": documentation,
            "webmail": provider.webmail,
        },
    )


def _other(language: str) -> str:
    return next(code for code in LANGUAGES if code != language)
