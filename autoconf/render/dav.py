"""Calendars and contacts where clients look for them (RFC 6764): where
``/.well-known/caldav`` and ``/.well-known/carddav`` redirect to, and what the
``_caldavs._tcp``/``_carddavs._tcp`` SRV and TXT records name
(docs/http.md#calendars-and-contacts).

A domain file's ``calendar.url`` and ``addressbook.url`` are the provider's
URLs. A request that carries an address is sent to the URL with it filled in. A
request that carries only its domain (Thunderbird's PROPFIND of
``https://D/.well-known/carddav``, which names no user) is sent to the URL's
*base*: the URL cut before the first path segment that names the user
(``%EMAILADDRESS%`` or ``%EMAILLOCALPART%``), ``%EMAILDOMAIN%`` filled in. From
there a CalDAV or CardDAV client asks the server for the logged-in user's
principal (RFC 5397), which every server answers on any of its paths. DNS can
name only the base: a record is the same for every user of the domain.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

from autoconf.address import Address, InvalidDomain, normalize_domain
from autoconf.errors import NotFound
from autoconf.model import DavService, Provider
from autoconf.placeholders import EMAILADDRESS, EMAILDOMAIN, EMAILLOCALPART, PLACEHOLDERS, fill

# The placeholders that name a user, not the domain: DNS and a request without an
# address cannot fill them.
USER_PLACEHOLDERS = (EMAILADDRESS, EMAILLOCALPART)
CALDAV = "caldav"
CARDDAV = "carddav"
# What is left as it is when a URL is made ASCII: RFC 3986's reserved characters,
# and '%' (the URL may hold escapes already, and the placeholders).
_URL_SAFE = ":/?#[]@!$&'()*+,;=%~"


@dataclass(frozen=True, slots=True)
class DavTarget:
    """One service's URL, compiled: as the file has it (in ASCII), and its base."""

    url: str
    base: str | None  # None: the URL's host names the user, so there is no base


@dataclass(frozen=True, slots=True)
class DavTargets:
    caldav: DavTarget | None
    carddav: DavTarget | None

    def of(self, kind: str) -> DavTarget | None:
        return self.caldav if kind == CALDAV else self.carddav


def compile_provider(provider: Provider) -> DavTargets:
    return DavTargets(_target(provider.calendar), _target(provider.addressbook))


def _target(dav: DavService | None) -> DavTarget | None:
    if dav is None:
        return None
    url = ascii_url(dav.url)
    return DavTarget(url, base_url(url))


def ascii_url(url: str) -> str:
    """The URL as a Location header may carry it: the host in A-labels, anything
    else that is not ASCII percent-encoded (UTF-8). Placeholders are kept."""
    parts = urlsplit(url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    host, colon, port = hostport.rpartition(":") if "]" not in hostport else ("", "", "")
    if not colon or not port.isdigit():
        host, colon, port = hostport, "", ""
    if not host.isascii() and not any(p in host for p in PLACEHOLDERS):
        try:
            host = normalize_domain(host)
        except InvalidDomain:
            pass  # checked when the file was read; kept as written
    netloc = quote(f"{userinfo}{at}", safe=_URL_SAFE) + host + colon + port
    path, query, fragment = (quote(p, safe=_URL_SAFE) for p in parts[2:])
    return urlunsplit((parts.scheme, netloc, path, query, fragment))


def base_url(url: str) -> str | None:
    """The URL up to the first path segment that names the user, query and fragment
    left out; the URL itself (but its fragment) when nothing in it does; None when
    its host or port does."""
    parts = urlsplit(url)
    if _names_user(parts.netloc):
        return None
    if not _names_user(url):
        return urlunsplit((*parts[:4], ""))
    segments = parts.path.split("/")
    cut = next((i for i, s in enumerate(segments) if _names_user(s)), None)
    path = parts.path if cut is None else "/".join(segments[:cut]) + "/"
    return urlunsplit((parts.scheme, parts.netloc, path or "/", "", ""))


def _names_user(text: str) -> bool:
    return any(p in text for p in USER_PLACEHOLDERS)


def location(targets: DavTargets, kind: str, address: Address | None, domain: str) -> str:
    """Where ``/.well-known/<kind>`` sends this request; NotFound when nowhere."""
    target = targets.of(kind)
    what = "calendar (CalDAV)" if kind == CALDAV else "address book (CardDAV)"
    if target is None:
        raise NotFound(f"no {what} is configured for {domain}")
    if address is not None:
        return fill(
            target.url,
            {
                EMAILADDRESS: quote(address.full, safe="@"),
                EMAILLOCALPART: quote(address.local, safe="@"),
                EMAILDOMAIN: address.domain,
            },
        )
    if target.base is None:
        raise NotFound(
            f"the {what} URL of {domain} names the user in its host: ask with ?emailaddress=ADDRESS"
        )
    return fill(target.base, {EMAILDOMAIN: domain})


@dataclass(frozen=True, slots=True)
class DnsEntry:
    """What DNS says of one service for a domain (RFC 6764): the SRV record's
    service label, target and port, and the TXT record's context path."""

    label: str  # "_caldavs._tcp", "_carddav._tcp"…
    host: str
    port: int
    path: str


def dns_service(targets: DavTargets, kind: str, domain: str) -> DnsEntry | None:
    """The SRV and TXT data of ``kind`` for ``domain``; None when the provider has
    no such URL or its host names the user."""
    target = targets.of(kind)
    if target is None or target.base is None:
        return None
    parts = urlsplit(fill(target.base, {EMAILDOMAIN: domain}))
    secure = parts.scheme == "https"
    host = (parts.hostname or "").rstrip(".")
    port = parts.port or (443 if secure else 80)
    return DnsEntry(f"_{kind}{'s' if secure else ''}._tcp", host, port, parts.path or "/")
