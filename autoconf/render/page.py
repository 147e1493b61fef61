"""The page for people who set up mail by hand (docs/http.md#the-page-for-people).

Jinja2 with autoescape: an address is always text, never markup. Its texts are
gettext messages (autoconf/render/languages.py), one Jinja2 environment a language.
No script and no inline style attribute anywhere, so a strict
Content-Security-Policy holds: the provider's colour is one ``<style>`` element
named by its hash in the policy, the logo an image of our own origin, the QR
code inline SVG made by segno.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import quote

import segno
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from autoconf import placeholders
from autoconf.address import Address, host_for_people
from autoconf.branding import READABLE_CONTRAST, contrast_with_white
from autoconf.model import DavService, Provider, Security, Server, ServerType, UserSettings
from autoconf.render.languages import DEFAULT_LANGUAGE, LANGUAGES, N_, translations
from autoconf.render.user import server_fields

__all__ = ["DEFAULT_LANGUAGE", "LANGUAGES"]

CONTENT_TYPE = "text/html; charset=utf-8"
# Scripts: none. Styles: our own file (and the provider's colour, by its hash).
# Forms: back to us. Nothing may frame us.
CSP = (
    "default-src 'none'; style-src 'self'{styles}; img-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)

_SECURITY = {
    Security.SSL: N_("SSL/TLS"),
    Security.STARTTLS: N_("STARTTLS"),
    Security.NONE: N_("None (unencrypted)"),
}
_PASSWORDS = {
    "password-cleartext": N_("Your email password (normal password)"),
    "password-encrypted": N_("Your email password (encrypted password, CRAM-MD5)"),
    "NTLM": N_("Windows sign-in (NTLM)"),
    "GSSAPI": N_("Kerberos (GSSAPI)"),
    "OAuth2": N_("Sign in with your provider (OAuth2)"),
    "TLS-client-cert": N_("A client certificate"),
    "client-IP-address": N_("None: your network is recognised"),
    "none": N_("None"),
}
_PROTOCOLS = {ServerType.IMAP: "IMAP", ServerType.POP3: "POP3", ServerType.SMTP: "SMTP"}
# Each program with steps on the page, in the order shown to a device the page
# does not know (or to none).
CLIENTS: tuple[tuple[str, str], ...] = (
    ("thunderbird", N_("Thunderbird (Windows, Mac, Linux)")),
    ("outlook_new", N_("New Outlook for Windows, and Windows Mail")),
    ("outlook_classic", N_("Outlook for Windows (classic)")),
    ("outlook_mac", N_("Outlook for Mac")),
    ("mac", N_("Apple Mail on the Mac")),
    ("iphone", N_("iPhone and iPad")),
    ("android_thunderbird", N_("Thunderbird for Android and K-9 Mail")),
    ("gmail", N_("Gmail app on Android")),
    ("samsung", N_("Samsung Email")),
    ("other", N_("Any other program")),
)
# What a device's User-Agent tells: the programs that come first on it.
_FIRST = {
    "ios": ("iphone",),
    "android": ("android_thunderbird", "gmail", "samsung"),
    "mac": ("mac", "outlook_mac", "thunderbird"),
    "windows": ("outlook_new", "outlook_classic", "thunderbird"),
}


@dataclass(frozen=True, slots=True)
class Device:
    """What the User-Agent says the page is read on (never required)."""

    kind: str | None  # a key of _FIRST
    phone: bool  # a phone or tablet: the QR code makes no sense there


def device_of(user_agent: str) -> Device:
    """iPhone/iPad, Android, Mac or Windows, from the User-Agent's usual tokens."""
    text = user_agent[:512]
    if any(token in text for token in ("iPhone", "iPad", "iPod")):
        return Device("ios", True)
    if "Android" in text:
        return Device("android", True)
    if "Macintosh" in text:
        return Device("mac", False)
    if "Windows" in text:
        return Device("windows", False)
    return Device(None, False)


@dataclass(frozen=True, slots=True)
class Brand:
    """Whose page it is: the provider's name, the URL of its logo, the style of its colour."""

    name: str
    logo: str | None = None
    style: str = ""

    @property
    def csp(self) -> str:
        return content_security_policy((self.style,) if self.style else ())


@cache
def content_security_policy(styles: tuple[str, ...] = ()) -> str:
    hashes = "".join(
        f" 'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'"
        for s in styles
    )
    return CSP.format(styles=hashes)


def brand(provider: Provider, domain: str) -> Brand:
    logo = None
    if provider.logo is not None:
        logo = f"/logo?domain={quote(domain)}&v={provider.logo.digest}"
    style = ""
    if provider.color is not None:
        style = f":root{{--brand:{provider.color}}}"
        if contrast_with_white(provider.color) >= READABLE_CONTRAST:
            style = f":root{{--brand:{provider.color};--button:{provider.color}}}"
    return Brand(provider.name, logo, style)


@dataclass(frozen=True, slots=True)
class Row:
    protocol: str
    host: str  # as a person reads it (Unicode)
    host_ascii: str  # the A-label form beside it, when it differs
    port: int
    security: str
    username: str  # exactly as the server expects it
    username_unicode: str  # the same, its domain in Unicode, when it differs
    password: str


def breakable(text: str) -> Markup:
    """``text``, escaped, with a line break allowed only after a dot, an ``@`` or a
    slash: a host name never breaks mid-word, where a reader would type the break."""
    pieces = []
    current = ""
    for char in text:
        current += char
        if char in ".@/":
            pieces.append(current)
            current = ""
    pieces.append(current)
    return Markup("<wbr>").join(escape(piece) for piece in pieces if piece)


@cache
def _environment(language: str) -> Environment:
    environment = Environment(
        loader=PackageLoader("autoconf", "templates"),
        autoescape=select_autoescape(default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.i18n"],
    )
    environment.install_gettext_translations(  # type: ignore[attr-defined]
        translations(language), newstyle=True
    )
    environment.filters["breakable"] = breakable
    return environment


def _render(language: str, **context: Any) -> str:
    environment = _environment(language)
    defaults = {"brand": None, "problem": None, "settings": None, "value": ""}
    return environment.get_template("page.html").render(
        {**defaults, **context}, lang=language, languages=tuple(LANGUAGES.items())
    )


def _fill(text: str, address: Address) -> str:
    return placeholders.fill(text, placeholders.values(address, address.domain))


def _row(server: Server, address: Address, gettext: Any, user: UserSettings | None) -> Row:
    # The host and login a lookup found, else the file's, as the other formats fill them.
    host, username = server_fields(server, server.type is ServerType.SMTP, address, user)
    username = username if server.needs_login else ""
    local, at, domain = username.rpartition("@")
    readable = f"{local}@{host_for_people(domain)}" if at else username
    return Row(
        protocol=_PROTOCOLS[server.type],
        host=host_for_people(host),
        host_ascii=host if host_for_people(host) != host else "",
        port=server.port,
        security=gettext(_SECURITY[server.security]),
        username=username,
        username_unicode=readable if readable != username else "",
        password=gettext(_PASSWORDS[server.auth[0].value]),
    )


def _dav(dav: DavService | None, address: Address) -> dict[str, str] | None:
    if dav is None:
        return None
    return {"url": _fill(dav.url, address), "username": _fill(dav.username, address)}


def qr_svg(url: str) -> Markup:
    """The URL as a QR code, inline SVG without style attributes (the CSP allows none)."""
    svg = segno.make(url, error="m").svg_inline(scale=4, dark="#000", light="#fff", omitsize=True)
    return Markup(svg)  # noqa: S704 -- segno's own markup; the URL inside is escaped by segno


def form(language: str, *, value: str = "") -> str:
    """The form alone: where a person types the address."""
    return _render(language, value=value)


@dataclass(frozen=True, slots=True)
class Problem:
    """What went wrong, for people: a title and what to do, in the page's language."""

    title: str
    lines: tuple[str, ...]


# What went wrong, for people: a title and what to do (docs/http.md, "Errors, for people").
_PROBLEMS: dict[str, tuple[str, tuple[str, ...]]] = {
    "unknown_domain": (
        N_("We have no settings for %(domain)s"),
        (
            N_(
                "Check the spelling of the part after the @. If it is right, this "
                "service does not set up mail for that domain: ask your email provider "
                "for the settings."
            ),
        ),
    ),
    "not_an_address": (
        N_("This is not an email address"),
        (
            N_(
                "An email address has a name, one @ and a domain, with no spaces, "
                "for example anna@example.com. Check what you typed and try again."
            ),
        ),
    ),
    # Any other refusal (a bad Host, a request too long, a method the page does not answer).
    "cannot_show": (
        N_("These settings cannot be shown"),
        (N_("Type your email address in the form and try again."),),
    ),
    "service_error": (
        N_("Something went wrong on our side"),
        (
            N_("This is not your fault, and nothing was changed. Try again in a few minutes."),
            N_(
                "If it keeps happening, tell your email provider when it happened and "
                "which address you typed."
            ),
        ),
    ),
}
PROBLEMS = tuple(_PROBLEMS)


def problem(language: str, kind: str, value: str, **values: str) -> str:
    """The page of one of :data:`PROBLEMS`, with the form again and what was typed."""
    gettext = translations(language).gettext
    title, lines = _PROBLEMS[kind]
    shown = Problem(gettext(title) % values, tuple(gettext(line) for line in lines))
    return _render(language, problem=shown, value=value)


def settings(
    language: str,
    provider: Provider,
    address: Address,
    *,
    brand: Brand,
    device: Device,
    profile_url: str | None,
    profile_link: str | None = None,
    signed: bool,
    user: UserSettings | None = None,
) -> str:
    """The settings to type for ``address``. ``profile_url`` is the Apple profile's
    absolute URL, for the QR code a phone scans; ``profile_link`` what the page's
    link points at (a relative URL stays on the origin the page came from; default:
    ``profile_url``). Both None when Apple Mail cannot use the provider."""
    gettext = translations(language).gettext
    first = _FIRST.get(device.kind or "", ())
    order = [*first, *(client for client, _ in CLIENTS if client not in first)]
    names = dict(CLIENTS)
    clients = [
        {"id": client, "name": gettext(names[client]), "first": client in first} for client in order
    ]
    documentation = [
        (doc.url, dict(doc.text).get(language) or dict(doc.text).get("en") or doc.url)
        for doc in provider.documentation
    ]
    # The QR code is for a phone to scan from another screen: never on the phone.
    qr = qr_svg(profile_url) if profile_url and not device.phone else None
    return _render(
        language,
        brand=brand,
        device=device,
        clients=clients,
        value=address.for_people,
        settings={
            "address": address.for_people,
            "incoming": [_row(s, address, gettext, user) for s in provider.served_incoming],
            "outgoing": [_row(s, address, gettext, user) for s in provider.served_outgoing],
            "calendar": _dav(provider.calendar, address),
            "contacts": _dav(provider.addressbook, address),
            "webmail": provider.webmail,
            "pop3": any(s.type is ServerType.POP3 for s in provider.served_incoming),
            "smtp_auth": any(s.needs_login for s in provider.served_outgoing),
            "profile_link": profile_link or profile_url,
            "qr": qr,
            "signed": signed,
            "documentation": documentation,
            "support": provider.support,
        },
    )
