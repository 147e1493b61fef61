"""A domain file, read: the marked YAML tree checked into a :class:`Provider`.

:func:`build_provider` validates a whole file and returns every problem it
finds (never only the first), each as ``FILE:LINE: key.path: message``.
Lint warnings live in :mod:`autoconf.lint`; they never stop a file from serving.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from pathlib import Path
from types import MappingProxyType

from autoconf import typed_read as read
from autoconf import values
from autoconf.branding import AssetUnreadable, ReadAsset, read_color, read_logo, read_support
from autoconf.domain_list import ReadList, read_domains, read_list_beside
from autoconf.errors import Problem
from autoconf.lookup_file import domains_query_reader, read_lookup
from autoconf.model import (
    CATCH_ALL,
    DEFAULT_PORTS,
    MANAGESIEVE_PORT,
    OUTGOING_ONLY_AUTH,
    WILDCARD_PREFIX,
    Auth,
    DavService,
    Documentation,
    ManageSieve,
    MobileConfig,
    OAuth2,
    Pop3Options,
    Provider,
    Security,
    Server,
    ServerType,
    default_mobileconfig,
)
from autoconf.placeholders import EMAILADDRESS, HOST_PLACEHOLDERS
from autoconf.typed_read import Node, Problems
from autoconf.values import describe
from autoconf.yamlio import MarkedList, MarkedMap

_TOP_KEYS = (
    "provider",
    "domains",
    "domains_from",
    "incoming",
    "outgoing",
    "calendar",
    "addressbook",
    "activesync",
    "webmail",
    "documentation",
    "oauth2",
    "mobileconfig",
    "support",
    "jmap",
    "ews",
    "managesieve",
    "mx_domains",
    "lookup",
)
_SERVER_KEYS = ("type", "host", "port", "security", "auth", "username", "pop3")
_POP3_KEYS = ("leave_messages_on_server", "days_to_leave_messages_on_server", "download_on_biff")
# The names a server entry may choose from, made once (a hoster loads 100,000 files).
_SECURITY_NAMES = tuple(s.value for s in Security)
_ALL_AUTH_NAMES = tuple(a.value for a in Auth)
_INCOMING_AUTH_NAMES = tuple(a.value for a in Auth if a not in OUTGOING_ONLY_AUTH)
_OUTGOING_ONLY_REASONS = MappingProxyType(
    {a.value.lower(): "is only for outgoing servers" for a in OUTGOING_ONLY_AUTH}
)
# What admins write for "TLS" without saying which: both are TLS.
_TLS_HINT = (
    "is not one of ssl, starttls, none: did you mean ssl (TLS from the first byte, "
    "ports 993, 995, 465) or starttls (TLS after connecting, ports 143, 110, 587)?"
)
_SECURITY_HINTS = MappingProxyType(
    dict.fromkeys(("tls", "ssl/tls", "tls/ssl", "ssl-tls"), _TLS_HINT)
)
_REVERSE_DNS = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*\Z")


def build_provider(
    tree: object,
    file: str,
    base_dir: Path,
    read_list: ReadList | None = None,
    max_domains: int | None = None,
    pool: dict[Server, Server] | None = None,
    known: Collection[str] = (),
    read_asset: ReadAsset | None = None,
) -> tuple[Provider | None, list[Problem]]:
    """Validate a whole file; return the provider (None on any error) and every problem.

    ``read_list`` reads the domains_from file (by default, unbounded, from ``base_dir``),
    ``read_asset`` the logo (by default from ``base_dir``).
    Servers equal to one in ``pool`` are that one: a hoster's one-domain files name
    the same servers again and again, and 100,000 such files then hold them once.
    (Server equality leaves out where in its file a server was written.)
    ``known`` are domains a previous version of the file listed (see
    :func:`autoconf.domain_list.read_domains`).
    """
    problems = Problems(file)
    root = read.mapping(problems, tree, "", 1)
    if root is None:
        return None, problems.found
    read.keys(root, _TOP_KEYS)

    read_list = read_list or read_list_beside(base_dir)
    lookup = read_lookup(root, base_dir, read_list)
    queried = domains_query_reader(root, lookup, read_list)
    domains, origins, patterns = read_domains(root, read_list, known, queried)
    if max_domains is not None and len(domains) > max_domains:
        line = root.map.line_of("domains_from" if "domains_from" in root else "domains")
        message = f"too many domains ({len(domains)}, limit {max_domains})"
        problems.error(line, "domains", message)
    pool = {} if pool is None else pool
    incoming = _servers(root, "incoming", (ServerType.IMAP, ServerType.POP3), pool)
    outgoing = _servers(root, "outgoing", (ServerType.SMTP,), pool)

    meta = read.child(root, "provider")
    first = next((d for d in domains if d != CATCH_ALL), "catch-all")
    provider_id = first.removeprefix(WILDCARD_PREFIX)
    name = short_name = logo = color = None
    if meta is not None:
        read.keys(meta, ("id", "name", "short_name", "logo", "color"))
        provider_id = read.hostname(meta, "id", default=provider_id) or provider_id
        name = read.string(meta, "name")
        short_name = read.string(meta, "short_name")
        logo = read_logo(meta, read_asset or read_asset_beside(base_dir))
        color = read_color(meta)
    display_name = name or provider_id

    provider = Provider(
        id=provider_id,
        name=display_name,
        short_name=short_name or display_name[:12],
        domains=tuple(domains),
        incoming=tuple(incoming),
        outgoing=tuple(outgoing),
        file=file,
        calendar=_dav(root, "calendar"),
        addressbook=_dav(root, "addressbook"),
        activesync=_url_only(root, "activesync"),
        webmail=_url_only(root, "webmail"),
        documentation=tuple(_documentation(root)),
        oauth2=_oauth2(root),
        mobileconfig=_mobileconfig(root, provider_id, display_name),
        logo=logo,
        color=color,
        support=read_support(root),
        jmap=_url_only(root, "jmap"),
        ews=_url_only(root, "ews"),
        managesieve=_managesieve(root),
        mx_domains=_mx_domains(root),
        lookup=lookup,
        origins=origins,
        patterns=tuple(patterns),
    )
    return (None if problems.has_errors else provider), problems.found


def read_asset_beside(base_dir: Path) -> ReadAsset:
    """A ReadAsset for a file in ``base_dir`` (for tests and tools)."""

    def read_file(name: str) -> bytes:
        path = base_dir / name
        try:
            return path.read_bytes()
        except OSError as exc:
            raise AssetUnreadable(
                f"cannot read {path}: {(exc.strerror or str(exc)).lower()}"
            ) from None

    return read_file


def _servers(
    root: Node, key: str, types: tuple[ServerType, ...], pool: dict[Server, Server]
) -> list[Server]:
    listed = read.items(root, key)
    if listed is None:
        if key not in root:
            root.missing(key, "missing: list at least one server")
        return []
    if not listed:
        root.error(key, "list at least one server")
    servers = []
    for entry in read.entries(root, key):
        written = (entry.path, types, _fingerprint(entry.map))
        server = _CHECKED_SERVERS.get(written)
        if server is None:
            count = len(entry.problems.found)
            server = _server(entry, types)
            if server is not None and len(entry.problems.found) == count:
                if len(_CHECKED_SERVERS) >= _MAX_CHECKED_SERVERS:
                    _CHECKED_SERVERS.clear()
                _CHECKED_SERVERS[written] = server
        if server is not None:
            servers.append(pool.setdefault(server, server))
    return servers


# Servers that passed their checks without a problem, by what was written (and
# where): a hoster's 100,000 files repeat the same few servers, which are then
# checked once (measured: a quarter of reading such a file). Bounded: emptied when full.
_CHECKED_SERVERS: dict[tuple[str, tuple[ServerType, ...], object], Server] = {}
_MAX_CHECKED_SERVERS = 10_000


def _fingerprint(value: object) -> object:
    """What was written, exactly (types and lines included), as a dictionary key."""
    if isinstance(value, MarkedMap):
        items = tuple((k, value.key_lines.get(k), _fingerprint(v)) for k, v in value.items())
        return (MarkedMap, value.line, items)
    if isinstance(value, MarkedList):
        return (MarkedList, value.line, tuple(value.item_lines), tuple(map(_fingerprint, value)))
    return (type(value), value)


def _server(entry: Node, types: tuple[ServerType, ...]) -> Server | None:
    read.keys(entry, _SERVER_KEYS)
    default_type = types[0].value if len(types) == 1 else None
    type_name = read.choice(entry, "type", [t.value for t in types], default=default_type)
    host = read.hostname(entry, "host", placeholders=HOST_PLACEHOLDERS)
    security_name = read.choice(entry, "security", _SECURITY_NAMES, elsewhere=_SECURITY_HINTS)
    port = read.port(entry, "port")
    username = read.template(entry, "username", default=EMAILADDRESS)
    allowed_auth = _ALL_AUTH_NAMES
    outgoing_only: Mapping[str, str] = {}
    if types != (ServerType.SMTP,):
        allowed_auth = _INCOMING_AUTH_NAMES
        outgoing_only = _OUTGOING_ONLY_REASONS
    auth_names = read.choices(
        entry,
        "auth",
        allowed_auth,
        default=Auth.PASSWORD_CLEARTEXT.value,
        elsewhere=outgoing_only,
    )
    pop3 = _pop3(entry, type_name)
    if type_name is None or host is None or security_name is None:
        return None
    if username is None or auth_names is None or (port is None and "port" in entry):
        return None
    server_type = ServerType(type_name)
    security = Security(security_name)
    return Server(
        type=server_type,
        host=host,
        port=port or DEFAULT_PORTS[(server_type, security)],
        security=security,
        auth=tuple(Auth(a) for a in auth_names),
        username=username,
        pop3=pop3,
        lines=_lines(entry.map),
        path=entry.path,
    )


def _lines(entry: MarkedMap) -> dict[str, int]:
    """Where the server's keys (and its pop3 options, as ``pop3.KEY``) stand."""
    lines = dict(entry.key_lines) | {"": entry.line}
    pop3 = entry.get("pop3")
    if isinstance(pop3, MarkedMap):
        lines |= {f"pop3.{key}": line for key, line in pop3.key_lines.items()}
    return lines


def _pop3(entry: Node, type_name: str | None) -> Pop3Options | None:
    options = read.child(entry, "pop3")
    if options is None:
        return None
    if type_name != ServerType.POP3.value:
        entry.error("pop3", "pop3 options belong on a server of type pop3")
    read.keys(options, _POP3_KEYS)
    leave = read.boolean(options, "leave_messages_on_server")
    days = read.integer(options, "days_to_leave_messages_on_server", minimum=1, maximum=36500)
    biff = read.boolean(options, "download_on_biff")
    return Pop3Options(leave, days, biff)


def _dav(root: Node, key: str) -> DavService | None:
    entry = read.child(root, key)
    if entry is None:
        return None
    read.keys(entry, ("url", "username"))
    url = read.url(entry, "url", required=True)
    username = read.template(entry, "username", default=EMAILADDRESS)
    return DavService(url, username) if url and username else None


def _url_only(root: Node, key: str) -> str | None:
    entry = read.child(root, key)
    if entry is None:
        return None
    read.keys(entry, ("url",))
    return read.url(entry, "url", required=True)


def _documentation(root: Node) -> list[Documentation]:
    docs: list[Documentation] = []
    for entry in read.entries(root, "documentation"):
        read.keys(entry, ("url", "text"))
        url = read.url(entry, "url", required=True)
        texts = read.language_texts(entry, "text")
        if url is not None and texts is not None:
            docs.append(Documentation(url, texts))
    return docs


_OAUTH2_KEYS = ("issuer", "scope", "auth_url", "token_url", "client_id")
_SECRET = (
    "a client secret is never served: a config is public, so a secret in it is no "
    "secret (draft-ietf-mailmaint-oauth-public: public clients); give client_id alone"
)


def _oauth2(root: Node) -> OAuth2 | None:
    entry = read.child(root, "oauth2")
    if entry is None:
        return None
    if "client_secret" in entry:
        entry.error("client_secret", _SECRET)
    read.keys(entry, (*_OAUTH2_KEYS, "client_secret"))
    issuer = _issuer(entry)
    scope = read.string(entry, "scope", required=True)
    auth_url = read.url(entry, "auth_url", required=True)
    token_url = read.url(entry, "token_url", required=True)
    client_id = read.string(entry, "client_id")
    if issuer and scope and auth_url and token_url:
        return OAuth2(issuer, scope, auth_url, token_url, client_id)
    return None


def _issuer(entry: Node) -> str | None:
    """A host name (as autoconfig 1.1 writes it) or an https URL (RFC 8414's form)."""
    text = entry.map.get("issuer")
    if not isinstance(text, str) or "://" not in text:
        return read.hostname(entry, "issuer")
    url = read.url(entry, "issuer")
    if url is None:
        return None
    if not url.startswith("https://") or "?" in url or "#" in url or "%" in url:
        entry.error("issuer", f"{url!r}: an issuer URL is https, with no query or fragment")
        return None
    return url


def _managesieve(root: Node) -> ManageSieve | None:
    entry = read.child(root, "managesieve")
    if entry is None:
        return None
    read.keys(entry, ("host", "port", "security", "username"))
    host = read.hostname(entry, "host", placeholders=HOST_PLACEHOLDERS)
    port = read.port(entry, "port")
    security_name = read.choice(entry, "security", _SECURITY_NAMES, elsewhere=_SECURITY_HINTS)
    username = read.template(entry, "username", default=EMAILADDRESS)
    if host is None or security_name is None or username is None:
        return None
    if port is None and "port" in entry:
        return None
    return ManageSieve(host, port or MANAGESIEVE_PORT, Security(security_name), username)


def _mx_domains(root: Node) -> tuple[str, ...]:
    """The MX host names the provider answers for (``mx1.hoster.example``)."""
    listed = read.items(root, "mx_domains")
    found: list[str] = []
    for index, value in enumerate(listed or ()):
        path = f"mx_domains[{index}]"
        line = listed.line_of(index) if listed is not None else 0
        if not isinstance(value, str):
            root.problems.error(line, path, f"expected a host name, got {describe(value)}")
            continue
        try:
            host = values.hostname(value)
        except values.Invalid as exc:
            root.problems.error(line, path, exc.messages[0])
            continue
        if host in found:
            root.problems.warning(line, path, f"{host} is listed twice")
        else:
            found.append(host)
    return tuple(found)


def _mobileconfig(root: Node, provider_id: str, name: str) -> MobileConfig:
    default = default_mobileconfig(provider_id, name)
    entry = read.child(root, "mobileconfig")
    if entry is None:
        return default
    read.keys(entry, ("identifier", "organization"))
    identifier = read.string(entry, "identifier")
    if identifier is not None and not _REVERSE_DNS.match(identifier):
        entry.error(
            "identifier",
            f"{identifier!r} is not a reverse-DNS identifier such as com.example.mail",
        )
    organization = read.string(entry, "organization")
    return MobileConfig(identifier or default.identifier, organization or default.organization)
