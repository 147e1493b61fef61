"""The provider model: what a domain file says, as frozen dataclasses.

The types a domain file becomes (:class:`Provider` and its parts) and the rules
of domain names and patterns. Reading a file into them is
:mod:`autoconf.domain_file`'s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import lru_cache

from publicsuffixlist import PublicSuffixList

from autoconf.address import InvalidDomain, normalize_domain
from autoconf.pickling import tuple_state

CATCH_ALL = "*"
WILDCARD_PREFIX = "*."


class ServerType(StrEnum):
    IMAP = "imap"
    POP3 = "pop3"
    SMTP = "smtp"


class Security(StrEnum):
    SSL = "ssl"
    STARTTLS = "starttls"
    NONE = "none"


class Auth(StrEnum):
    """Thunderbird's authentication values, spelt as its autoconfig files spell them."""

    PASSWORD_CLEARTEXT = "password-cleartext"
    PASSWORD_ENCRYPTED = "password-encrypted"
    NTLM = "NTLM"
    GSSAPI = "GSSAPI"
    OAUTH2 = "OAuth2"
    TLS_CLIENT_CERT = "TLS-client-cert"
    CLIENT_IP_ADDRESS = "client-IP-address"
    NONE = "none"


# Outgoing only: with these the client sends no login at all.
OUTGOING_ONLY_AUTH = frozenset({Auth.CLIENT_IP_ADDRESS, Auth.NONE})

DEFAULT_PORTS: Mapping[tuple[ServerType, Security], int] = {
    (ServerType.IMAP, Security.SSL): 993,
    (ServerType.IMAP, Security.STARTTLS): 143,
    (ServerType.IMAP, Security.NONE): 143,
    (ServerType.POP3, Security.SSL): 995,
    (ServerType.POP3, Security.STARTTLS): 110,
    (ServerType.POP3, Security.NONE): 110,
    (ServerType.SMTP, Security.SSL): 465,
    (ServerType.SMTP, Security.STARTTLS): 587,
    (ServerType.SMTP, Security.NONE): 587,
}


@tuple_state
@dataclass(frozen=True, slots=True)
class Pop3Options:
    leave_messages_on_server: bool | None = None
    days_to_leave_messages_on_server: int | None = None
    download_on_biff: bool | None = None


@tuple_state
@dataclass(frozen=True, slots=True)
class Server:
    type: ServerType
    host: str
    port: int
    security: Security
    auth: tuple[Auth, ...]
    username: str
    pop3: Pop3Options | None = None
    # Where each key stood in the file, for lint messages.
    lines: Mapping[str, int] = field(default_factory=dict, compare=False, repr=False)
    path: str = field(default="", compare=False, repr=False)

    @property
    def tls(self) -> bool:
        return self.security is not Security.NONE

    @property
    def needs_login(self) -> bool:
        return not set(self.auth) <= OUTGOING_ONLY_AUTH


@tuple_state
@dataclass(frozen=True, slots=True)
class DavService:
    url: str
    username: str


@tuple_state
@dataclass(frozen=True, slots=True)
class Documentation:
    url: str
    text: tuple[tuple[str, str], ...]  # (language, text)


@tuple_state
@dataclass(frozen=True, slots=True)
class OAuth2:
    issuer: str
    scope: str
    auth_url: str
    token_url: str
    client_id: str | None = None  # a public client id; a secret is never served

    @property
    def issuer_url(self) -> str:
        """The issuer as RFC 8414 names it, an https URL (the file may give the host
        alone, as autoconfig 1.1 files do)."""
        if "://" in self.issuer:
            return self.issuer
        return f"https://{self.issuer}"


@tuple_state
@dataclass(frozen=True, slots=True)
class ManageSieve:
    """A ManageSieve server (RFC 5804): where filters are set up."""

    host: str
    port: int
    security: Security
    username: str


# RFC 5804: ManageSieve listens on 4190, STARTTLS or (rarely) implicit TLS there too.
MANAGESIEVE_PORT = 4190


@tuple_state
@dataclass(frozen=True, slots=True)
class Logo:
    """The provider's logo for the page, read from a file beside the domain file."""

    media_type: str  # image/png, image/jpeg, image/webp or image/svg+xml
    data: bytes
    digest: str  # of the data: the page's URL for it changes when the file does


@tuple_state
@dataclass(frozen=True, slots=True)
class Support:
    """Whom a person asks when nothing works (the page's last section); any may be empty."""

    url: str = ""
    email: str = ""
    phone: str = ""


@tuple_state
@dataclass(frozen=True, slots=True)
class MobileConfig:
    identifier: str
    organization: str


def default_mobileconfig(provider_id: str, name: str) -> MobileConfig:
    """A profile's identity when the file names none: the id reversed
    (``example.com`` -> ``com.example``), and the provider's name."""
    return MobileConfig(".".join(reversed(provider_id.split("."))), name)


@tuple_state
@dataclass(frozen=True, slots=True)
class DomainSource:
    """Where a domain was claimed: for 'claimed by two files' messages."""

    file: str
    line: int
    path: str


@tuple_state
@dataclass(frozen=True, slots=True)
class DomainOrigins:
    """Where each of a provider's domains was written, kept compactly: a
    ``domains_from`` list holds a million, and a DomainSource each would cost
    more than the domains themselves. :meth:`source` makes one when asked."""

    file: str
    list_file: str  # the domains_from file, "" when there is none
    # The line of each domain in its file, and its index in ``domains:`` (-1: a
    # line of the list): arrays for long lists, tuples for a few (they unpickle
    # faster, and a restart unpickles 100,000 of them).
    lines: Sequence[int]
    indexes: Sequence[int]

    def source(self, position: int) -> DomainSource:
        index = self.indexes[position]
        if index < 0:
            return DomainSource(self.list_file, self.lines[position], "domains_from")
        return DomainSource(self.file, self.lines[position], f"domains[{index}]")


@tuple_state
@dataclass(frozen=True, slots=True)
class UserSettings:
    """What a per-user lookup found for one address: the login, and the incoming
    and outgoing host for that user ("" where the source gave none)."""

    login: str = ""
    incoming_host: str = ""
    outgoing_host: str = ""


# The keys a lookup tries, in the order written: the whole address, its local part,
# the source's alias query (which finds the user's own row for an alias).
LOOKUP_KEYS = ("address", "localpart", "alias")


@tuple_state
@dataclass(frozen=True, slots=True)
class MapSource:
    """A map file's lines (``address login`` or ``address key=value...``), read at
    load like a domains_from list; keys lower-case, aliases already followed."""

    file: str
    entries: Mapping[str, UserSettings] = field(compare=False)
    digest: str = ""  # of the entries: what the file's versions are compared by


@tuple_state
@dataclass(frozen=True, slots=True)
class SqlSource:
    """A PostgreSQL query with a bound parameter (``%(key)s``). The connection
    string names no password: that comes from ``password_file`` or ``password_env``."""

    connection: str
    query: str
    alias_query: str = ""
    password_file: str = ""
    password_env: str = ""
    domains_query: str = ""  # the provider's domains, one a row (a control panel's table)


@tuple_state
@dataclass(frozen=True, slots=True)
class LdapSource:
    """An LDAP search: ``filter`` with ``{key}`` (escaped), under ``base``."""

    url: str
    base: str
    filter: str
    alias_filter: str = ""
    bind_dn: str = ""
    password_file: str = ""
    password_env: str = ""
    # (what, attribute): login, incoming_host, outgoing_host.
    attributes: tuple[tuple[str, str], ...] = ()


@tuple_state
@dataclass(frozen=True, slots=True)
class Lookup:
    """A provider's per-user lookup: a source, the keys tried, a time bound, a cache."""

    source: MapSource | SqlSource | LdapSource
    keys: tuple[str, ...] = ("address", "localpart")
    timeout: float = 2.0  # seconds, for one whole lookup
    cache: float = 300.0  # seconds a found (or not found) answer is kept

    @property
    def kind(self) -> str:
        if isinstance(self.source, MapSource):
            return "map"
        return "postgresql" if isinstance(self.source, SqlSource) else "ldap"


@tuple_state
@dataclass(frozen=True, slots=True)
class Provider:
    id: str
    name: str
    short_name: str
    domains: tuple[str, ...]  # A-labels; "*.suffix" wildcards and "*" allowed
    incoming: tuple[Server, ...]
    outgoing: tuple[Server, ...]
    file: str
    calendar: DavService | None = None
    addressbook: DavService | None = None
    activesync: str | None = None
    webmail: str | None = None
    documentation: tuple[Documentation, ...] = ()
    oauth2: OAuth2 | None = None
    mobileconfig: MobileConfig | None = None
    # The page for people: the provider's logo and colour (``#rrggbb``), its support.
    logo: Logo | None = None
    color: str | None = None
    support: Support | None = None
    # Autoconfig 1.2 (draft-ietf-mailmaint-autoconfig-06) and PACC (-03).
    jmap: str | None = None  # the JMAP session URL
    ews: str | None = None
    managesieve: ManageSieve | None = None
    mx_domains: tuple[str, ...] = ()  # the MX host names (or their domains) it answers for
    lookup: Lookup | None = None
    origins: DomainOrigins | None = field(default=None, compare=False, repr=False)
    # The entries of ``domains`` that are patterns ("*.example.com", "*"), found
    # while parsing, so that a million plain domains need no look each.
    patterns: tuple[str, ...] = field(default=(), compare=False, repr=False)

    @property
    def served_incoming(self) -> tuple[Server, ...]:
        return served(self.incoming)

    @property
    def served_outgoing(self) -> tuple[Server, ...]:
        return served(self.outgoing)

    @property
    def concrete_domains(self) -> tuple[str, ...]:
        if not self.patterns:
            return self.domains
        patterns = set(self.patterns)
        return tuple(d for d in self.domains if d not in patterns)

    def same_settings(self, other: Provider) -> bool:
        """Whether the two answer alike but for which domains they serve."""
        return self.domains is other.domains or replace(self, domains=()) == replace(
            other, domains=()
        )

    def source(self, position: int) -> DomainSource:
        """Where ``domains[position]`` was written."""
        if self.origins is None:
            return DomainSource(self.file, 1, f"domains[{position}]")
        return self.origins.source(position)


def served(servers: tuple[Server, ...]) -> tuple[Server, ...]:
    """The plaintext rule: cleartext servers only where no TLS server of the kind exists.

    Nobody is steered to cleartext, and strict clients (Thunderbird for Android
    rejects a whole document for one plain server) keep working.
    """
    secure = tuple(s for s in servers if s.tls)
    return secure or servers


# ---------------------------------------------------------------------------
# Building a Provider from a marked YAML tree


def normalize_domain_pattern(raw: str) -> str:
    """A domain, a wildcard ``*.domain`` or the catch-all ``*``, normalised."""
    text = raw.strip()
    if text == CATCH_ALL:
        return CATCH_ALL
    if text.startswith(WILDCARD_PREFIX):
        return WILDCARD_PREFIX + normalize_domain(text[2:])
    if "*" in text:
        raise InvalidDomain(f"{text!r}: a wildcard must be '*' or start with '*.'")
    return normalize_domain(text)


def is_public_suffix(domain: str) -> bool:
    """Whether ``domain`` is a public suffix (``com``, ``co.uk``, ``github.io``, and
    any top-level name, ``example`` and ``test`` among them), by the Public Suffix
    List as the publicsuffixlist package ships it."""
    return _public_suffixes().is_public(domain)


def registered_domain(domain: str) -> str | None:
    """The registered domain of a normalised name (``hoster.example`` of
    ``mx1.hoster.example``, ``b.co.uk`` of ``a.b.co.uk``); None for a public suffix."""
    found: str | None = _public_suffixes().privatesuffix(domain)
    return found


@lru_cache(maxsize=1)
def _public_suffixes() -> PublicSuffixList:
    return PublicSuffixList()
