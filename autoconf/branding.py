"""Whose page it is: the provider's logo, colour and support contacts, read from
the domain file (``provider.logo``, ``provider.color``, ``support``; docs/domain-files.md).

The logo is a file beside the domain file, read when the domain file is (a change
to either is a change of the provider), bounded in size, and checked to be the
image it claims: PNG, JPEG and WebP by their signature, SVG by parsing it, without
scripts or anything that loads more. The service serves it itself (``GET /logo``),
so the page's Content-Security-Policy keeps naming only its own origin.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable

from lxml import etree

from autoconf import typed_read as read
from autoconf.address import parse_address
from autoconf.errors import RequestError
from autoconf.model import Logo, Support
from autoconf.typed_read import Node
from autoconf.values import Invalid

# A logo is shown 48 pixels high: a few kilobytes do; this keeps the page light.
MAX_LOGO_BYTES = 64 * 1024
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
)
_COLOR = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})\Z")
_PHONE = re.compile(r"\+?[0-9 ()./-]{3,40}\Z")
_SVG = "{http://www.w3.org/2000/svg}svg"
# SVG elements that run or embed something: never in a logo.
_ACTIVE = frozenset({"script", "foreignObject", "iframe", "embed", "object"})


class AssetUnreadable(Exception):
    """A file the domain file names (its logo) that cannot be read; the message says why."""


# Reads a file the domain file names, relative to it: its bytes, or AssetUnreadable.
ReadAsset = Callable[[str], bytes]


def logo(data: bytes) -> Logo:
    """The logo in ``data``, or Invalid with the reason."""
    if len(data) > MAX_LOGO_BYTES:
        raise Invalid(f"the logo has {len(data)} bytes; at most {MAX_LOGO_BYTES} are served")
    media_type = _media_type(data)
    return Logo(media_type, data, hashlib.sha256(data).hexdigest()[:16])


def _media_type(data: bytes) -> str:
    for signature, media_type in _SIGNATURES:
        if data.startswith(signature):
            return media_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError:
        raise Invalid("the logo is not a PNG, JPEG, WebP or SVG image") from None
    if root.tag != _SVG:
        raise Invalid("the logo is not a PNG, JPEG, WebP or SVG image")
    for element in root.iter():
        name = etree.QName(element).localname if isinstance(element.tag, str) else ""
        if name in _ACTIVE:
            raise Invalid(f"the logo's SVG has a <{name}> element: a logo is a picture only")
        if any(etree.QName(a).localname.lower().startswith("on") for a in element.attrib):
            raise Invalid("the logo's SVG has an event handler (on...): a logo is a picture only")
    return "image/svg+xml"


def color(text: str) -> str:
    """``#rgb`` or ``#rrggbb``, as ``#rrggbb`` in lower case; Invalid otherwise."""
    if not _COLOR.match(text):
        raise Invalid(f"{text!r} is not a colour such as #0b4fa8")
    digits = text[1:].lower()
    return "#" + (digits if len(digits) == 6 else "".join(d * 2 for d in digits))


def contrast_with_white(rgb: str) -> float:
    """WCAG 2's contrast ratio of white text on ``#rrggbb`` (1 to 21)."""

    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    red, green, blue = (int(rgb[i : i + 2], 16) for i in (1, 3, 5))
    luminance = 0.2126 * channel(red) + 0.7152 * channel(green) + 0.0722 * channel(blue)
    return 1.05 / (luminance + 0.05)


# White text on a button needs 4.5:1 (WCAG AA); a colour with less only marks the page.
READABLE_CONTRAST = 4.5


def read_logo(meta: Node, read_asset: ReadAsset) -> Logo | None:
    name = read.string(meta, "logo")
    if name is None:
        return None
    try:
        return logo(read_asset(name))
    except AssetUnreadable as exc:
        meta.error("logo", str(exc))
    except Invalid as exc:
        meta.invalid("logo", exc)
    return None


def read_color(meta: Node) -> str | None:
    text = read.string(meta, "color")
    if text is None:
        return None
    try:
        checked = color(text)
    except Invalid as exc:
        meta.invalid("color", exc)
        return None
    if contrast_with_white(checked) < READABLE_CONTRAST:
        meta.warning(
            "color",
            f"white text on {checked} is hard to read (contrast "
            f"{contrast_with_white(checked):.1f}:1, at least {READABLE_CONTRAST}:1 needed): "
            "the page uses it only as a stripe, and keeps its own colour for buttons",
        )
    return checked


def read_support(root: Node) -> Support | None:
    entry = read.child(root, "support")
    if entry is None:
        return None
    read.keys(entry, ("url", "email", "phone"))
    url = read.url(entry, "url") or ""
    email = read.string(entry, "email") or ""
    if email:
        try:
            email = parse_address(email).for_people
        except RequestError as exc:
            entry.error("email", f"{email!r}: {exc.reason}")
            email = ""
    phone = read.string(entry, "phone") or ""
    if phone and not _PHONE.match(phone):
        entry.error("phone", f"{phone!r} is not a phone number such as +49 30 1234567")
        phone = ""
    if not any(key in entry for key in ("url", "email", "phone")):
        entry.error(None, "support needs a url, an email or a phone")
    if not (url or email or phone):
        return None
    return Support(url, email, phone)
