"""Email addresses and domains from the outside world, normalised before use.

Domains compare case-insensitively, IDN-normalised (stored and compared as
A-labels, so ``müller.example`` and ``xn--mller-kva.example`` are one domain),
with a trailing dot ignored. Anything that is not a usable address or domain
raises :class:`BadRequest` with a one-line reason.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from dataclasses import dataclass

import idna

from autoconf.errors import BadRequest

MAX_LOCAL_PART = 64  # RFC 5321 4.5.3.1.1
MAX_DOMAIN = 253
_ASCII_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
# RFC 5322 "specials" that an unquoted local part may not contain ('@' is told apart).
_SPECIALS = re.compile(r'[()<>\[\]:;\\,"]')
# White space, control characters, and what XML cannot carry (surrogates, U+FFFE/F).
_CONTROL = re.compile(r"[\x00-\x20\x7f\u0080-\u009f\u2028\u2029\ud800-\udfff\ufffe\uffff]")


class InvalidDomain(ValueError):
    """Not a domain name; the message says why."""


def normalize_domain(raw: str) -> str:
    """Return the lower-case A-label form of a domain, or raise InvalidDomain."""
    domain = raw.strip()
    if domain.endswith("."):
        domain = domain[:-1]
    if not domain:
        raise InvalidDomain("the domain is empty")
    if len(domain) > MAX_DOMAIN * 4:  # cheap bound before IDNA does real work
        raise InvalidDomain("the domain is too long")
    if domain.isascii():
        domain = domain.lower()
        # The common case needs no IDNA work: plain letters, digits and hyphens.
        if "xn--" not in domain and all(_ASCII_LABEL.match(x) for x in domain.split(".")):
            return _check_length(domain)
    try:
        ascii_form = idna.encode(domain, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError) as exc:
        # idna's message may repeat the whole input: both are cut to keep one short line.
        reason = _shorten(str(exc), 60)
        raise InvalidDomain(f"{_shorten(raw)!r} is not a valid domain name ({reason})") from None
    labels = ascii_form.split(".")
    if not all(_ASCII_LABEL.match(label) for label in labels):
        raise InvalidDomain(f"{_shorten(raw)!r} is not a valid domain name")
    return _check_length(ascii_form)


def _check_length(domain: str) -> str:
    if len(domain) > MAX_DOMAIN:
        raise InvalidDomain("the domain is longer than 253 characters")
    return domain


def _shorten(text: str, limit: int = 40) -> str:
    """A piece of hostile input fit for a one-line reason: short, and printable."""
    cut = text if len(text) <= limit else text[:limit] + "…"
    return "".join(c if c.isprintable() else "?" for c in cut)


@dataclass(frozen=True, slots=True)
class Address:
    """A parsed email address: local part as given, domain normalised."""

    local: str
    domain: str

    @property
    def full(self) -> str:
        return f"{self.local}@{self.domain}"

    @property
    def for_people(self) -> str:
        """The address as a person reads it: an IDN domain in Unicode
        (``anna@müller.example``), as :attr:`full` otherwise."""
        return f"{self.local}@{host_for_people(self.domain)}"


def host_for_people(host: str) -> str:
    """A host name as a person reads it: A-labels in Unicode (``müller.example``),
    the name as it is when it has none or they do not decode."""
    if "xn--" not in host.lower():
        return host
    try:
        return str(idna.decode(host))
    except (idna.IDNAError, UnicodeError):
        return host


def public_host_name(text: str) -> str:
    """The host name of ``AUTOCONF_PUBLIC_HOST`` (a port left off), as an A-label;
    InvalidDomain for one that names no host a certificate can hold."""
    host = text.strip()
    if host.count(":") == 1:
        host, _, port = host.partition(":")
        if not port.isdigit():
            raise InvalidDomain(f"{text!r}: the port must be a number")
    return normalize_domain(host)


def parse_address(raw: str) -> Address:
    """Parse ``local@domain``; raise BadRequest with the reason if it is not one."""
    if "@" not in raw:
        raise BadRequest("not an email address: no '@'")
    local, _, domain_part = raw.rpartition("@")
    if not local:
        raise BadRequest("not an email address: nothing before the '@'")
    if len(local.encode("utf-8", "surrogatepass")) > MAX_LOCAL_PART:
        raise BadRequest(f"the local part is longer than {MAX_LOCAL_PART} octets")
    quoted = len(local) >= 2 and local.startswith('"') and local.endswith('"')
    if not quoted:
        if "@" in local:
            raise BadRequest("not an email address: more than one '@'")
        if _CONTROL.search(local):
            raise BadRequest("the local part contains white space or control characters")
        if local.startswith(".") or local.endswith(".") or ".." in local:
            raise BadRequest("the local part has a misplaced dot")
        special = _SPECIALS.search(local)
        if special:
            raise BadRequest(
                f"the local part has {special.group(0)!r}, which must be quoted (RFC 5322)"
            )
    elif _CONTROL.search(local.replace(" ", "")):
        raise BadRequest("the local part contains control characters")
    try:
        domain = normalize_domain(domain_part)
    except InvalidDomain as exc:
        raise BadRequest(str(exc)) from None
    if "." not in domain:
        raise BadRequest(f"{domain!r} is not a mail domain (it has no dot)")
    return Address(local, domain)


_PORT = re.compile(r"[0-9]{1,5}\Z")


def normalize_host(raw: str) -> str:
    """A ``Host`` header as ``name[:port]``, the name in lower-case A-labels (or an
    IP literal); "" stays "" (a request without a host names none).

    Raises BadRequest with a one-line reason for anything that names no host:
    characters no host name has, IDNA errors (``xn--zz.test``), empty or over-long
    labels, a port that is not one. Everything after this sees plain ASCII.
    """
    raw = raw.strip(" \t")  # optional white space around a header value is no part of it
    if not raw:
        return ""
    if not raw.isascii() or not raw.isprintable() or any(c in raw for c in " /?#@%\\"):
        raise BadRequest("the Host header has characters no host name has")
    name, port = raw, ""
    if raw.startswith("["):  # an IPv6 literal, perhaps with a port
        literal, bracket, rest = raw[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise BadRequest("the Host header is not a valid IPv6 literal")
        try:
            name = f"[{ipaddress.IPv6Address(literal).compressed}]"
        except ValueError:
            raise BadRequest("the Host header is not a valid IPv6 literal") from None
        port = rest[1:] if rest else ""
        has_port = bool(rest)
    else:
        if raw.count(":") > 1:
            raise BadRequest("the Host header has more than one ':'")
        host, colon, port = raw.partition(":")
        has_port = bool(colon)
        try:
            name = normalize_domain(host)
        except InvalidDomain as exc:
            raise BadRequest(f"the Host header names no host: {exc}") from None
    if has_port:
        if not _PORT.match(port) or not 0 < int(port) < 65536:
            raise BadRequest("the Host header's port is not a number from 1 to 65535")
        return f"{name}:{int(port)}"
    return name


def domain_from_host(host: str) -> str | None:
    """The mail domain a request's Host names, or None when it names none.

    A port is dropped, and so is a leading ``autoconfig.`` or ``autodiscover.``.
    """
    name = host.strip()
    if name.startswith("["):  # an IPv6 literal is no mail domain
        return None
    name = name.rsplit(":", 1)[0] if name.count(":") == 1 else name
    try:
        domain = normalize_domain(name)
    except InvalidDomain:
        return None
    for prefix in ("autoconfig.", "autodiscover."):
        if domain.startswith(prefix) and domain.count(".") >= 2:
            return domain[len(prefix) :]
    return domain


_XML_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;"})


_NEEDS_ESCAPE = re.compile("[&<>\"']")


def xml_escape(text: str) -> str:
    """Escape for XML text and attribute values alike (the same object when nothing to do)."""
    return text.translate(_XML_ESCAPES) if _NEEDS_ESCAPE.search(text) else text


# Where an address in a path, a query or a log line can begin: after one of these
# (or at the start of the text). What lies between such a mark and the last '@'
# before the next one is a local part, whatever characters it holds: spaces,
# '=', '+', quotes, non-ASCII. The domain runs from that '@' to the next of
# these or a white space.
_ADDRESS_START = "/?&<>()[],;\n\r\t"  # not quotes: a quoted local part may hold an '@'

_SEGMENT = re.compile(f"[^{re.escape(_ADDRESS_START)}]*@[^{re.escape(_ADDRESS_START)}]*")
# After the query's '?', a '/' is a character of a value (RFC 5322 allows it in a
# local part), not the start of a path segment.
_QUERY_START = _ADDRESS_START.replace("/", "")
_QUERY_SEGMENT = re.compile(f"[^{re.escape(_QUERY_START)}]*@[^{re.escape(_QUERY_START)}]*")
_DOMAIN_END = re.compile(r"\s")


def redact_addresses(text: str, mode: str, key: bytes = b"") -> str:
    """What logs show of addresses in ``text``: ``redact`` (``***@domain``), ``hash``
    (12 hex digits of an HMAC-SHA256 of the address under ``key``, the domain kept)
    or ``full``. The whole local part goes: in ``emailaddress=john=x y@d`` it is
    ``john=x y`` (after a query key's first ``=``, whatever follows, ``/`` too);
    in a path, all after the last ``/``; elsewhere, all since the last mark of
    ``_ADDRESS_START``."""
    if mode == "full" or "@" not in text:
        return text

    def replace(match: re.Match[str]) -> str:
        segment = match.group(0)
        head, _, rest = segment.rpartition("@")
        key_part, equals, local = head.partition("=")
        if not equals:
            key_part, local = "", head
        ended = _DOMAIN_END.search(rest)
        domain, tail = (rest[: ended.start()], rest[ended.start() :]) if ended else (rest, "")
        if mode == "hash":
            address = f"{local}@{domain}".lower().encode("utf-8", "replace")
            shown = hmac.new(key, address, hashlib.sha256).hexdigest()[:12]
        else:
            shown = "***"
        return f"{key_part}{equals}{shown}@{domain}{tail}"

    path, question, query = text.partition("?")
    return _SEGMENT.sub(replace, path) + question + _QUERY_SEGMENT.sub(replace, query)
