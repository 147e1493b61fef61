"""A domain file, read: the marked YAML tree checked into a :class:`Provider`.

:func:`build_provider` validates a whole file and returns every problem it
finds (never only the first), each as ``FILE:LINE: key.path: message``.
Lint warnings live in :mod:`autoconf.lint`; they never stop a file from serving.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType

from autoconf.address import MAX_DOMAIN, InvalidDomain
from autoconf.errors import Problem
from autoconf.model import (
    CATCH_ALL,
    DEFAULT_PORTS,
    OUTGOING_ONLY_AUTH,
    WILDCARD_PREFIX,
    Auth,
    DavService,
    Documentation,
    DomainOrigins,
    MobileConfig,
    OAuth2,
    Pop3Options,
    Provider,
    Security,
    Server,
    ServerType,
    default_mobileconfig,
    is_public_suffix,
    normalize_domain_pattern,
)
from autoconf.placeholders import EMAILADDRESS, HOST_PLACEHOLDERS
from autoconf.schema import Checker, describe
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
_REVERSE_DNS = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*\Z")


class ListUnreadable(Exception):
    """A domains_from file that cannot be read; the message says why."""


# Reads a domains_from file: (its name as messages show it, its text), or
# ListUnreadable with the reason.
ReadList = Callable[[str], tuple[str, str]]


def read_list_beside(base_dir: Path) -> ReadList:
    """A ReadList for a file in ``base_dir``, unbounded (for tests and tools)."""

    def read(name: str) -> tuple[str, str]:
        path = base_dir / name
        try:
            return str(path), path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ListUnreadable(f"cannot read {path}: {_reason(exc)}") from None

    return read


def build_provider(
    tree: object,
    file: str,
    base_dir: Path,
    read_list: ReadList | None = None,
    max_domains: int | None = None,
    pool: dict[Server, Server] | None = None,
    known: Collection[str] = (),
) -> tuple[Provider | None, list[Problem]]:
    """Validate a whole file; return the provider (None on any error) and every problem.

    ``read_list`` reads the domains_from file (by default, unbounded, from ``base_dir``).
    Servers equal to one in ``pool`` are that one: a hoster's one-domain files name
    the same servers again and again, and 100,000 such files then hold them once.
    (Server equality leaves out where in its file a server was written.)
    ``known`` are domains a previous version of the file listed, valid as they are:
    a list line equal to one of them needs no check of its own.
    """
    c = Checker(file)
    root = c.mapping(tree, "(root)", 1)
    if root is None:
        return None, c.problems
    c.keys(root, "", _TOP_KEYS)

    domains, origins, patterns = _domains(c, root, read_list or read_list_beside(base_dir), known)
    if max_domains is not None and len(domains) > max_domains:
        c.error(
            root,
            "domains_from" if "domains_from" in root else "domains",
            "domains",
            f"too many domains ({len(domains)}, limit {max_domains})",
        )
    pool = {} if pool is None else pool
    incoming = _servers(c, root, "incoming", (ServerType.IMAP, ServerType.POP3), pool)
    outgoing = _servers(c, root, "outgoing", (ServerType.SMTP,), pool)

    meta = c.child_mapping(root, "provider", "provider")
    first = next((d for d in domains if d != CATCH_ALL), "catch-all")
    provider_id = first.removeprefix(WILDCARD_PREFIX)
    name = short_name = None
    if meta is not None:
        c.keys(meta, "provider", ("id", "name", "short_name"))
        provider_id = c.hostname(meta, "id", "provider.id", default=provider_id) or provider_id
        name = c.string(meta, "name", "provider.name")
        short_name = c.string(meta, "short_name", "provider.short_name")
    display_name = name or provider_id
    display_short = short_name or display_name[:12]

    calendar = _dav(c, root, "calendar")
    addressbook = _dav(c, root, "addressbook")
    activesync = _url_only(c, root, "activesync")
    webmail = _url_only(c, root, "webmail")
    documentation = _documentation(c, root)
    oauth2 = _oauth2(c, root)
    mobileconfig = _mobileconfig(c, root, provider_id, display_name)

    if c.has_errors:
        return None, c.problems
    return (
        Provider(
            id=provider_id,
            name=display_name,
            short_name=display_short,
            domains=tuple(domains),
            incoming=tuple(incoming),
            outgoing=tuple(outgoing),
            file=file,
            calendar=calendar,
            addressbook=addressbook,
            activesync=activesync,
            webmail=webmail,
            documentation=tuple(documentation),
            oauth2=oauth2,
            mobileconfig=mobileconfig,
            origins=origins,
            patterns=tuple(patterns),
        ),
        c.problems,
    )


def _domains(
    c: Checker, root: MarkedMap, read_list: ReadList, known: Collection[str] = ()
) -> tuple[list[str], DomainOrigins, list[str]]:
    domains: list[str] = []
    patterns: list[str] = []  # those of the domains that are "*" or "*.suffix"
    lines = array("I")
    indexes = array("i")
    seen: dict[str, tuple[str, int]] = {}

    def add(raw: object, file: str, line: int, index: int) -> None:
        path = f"domains[{index}]" if index >= 0 else "domains_from"
        if not isinstance(raw, str):
            c.error_at(file, line, path, f"expected a domain name, got {describe(raw)}")
            return
        try:
            domain = normalize_domain_pattern(raw)
        except InvalidDomain as exc:
            c.error_at(file, line, path, str(exc))
            return
        if domain.startswith(WILDCARD_PREFIX) and is_public_suffix(domain[2:]):
            c.error_at(
                file,
                line,
                path,
                f"{domain}: a wildcard on a public suffix ({domain[2:]}) would take every "
                "domain under it; list the domains, or use '*' for a catch-all",
            )
            return
        first = seen.get(domain)
        if first is not None:
            c.warning_at(file, line, path, f"{domain} is listed twice (also {first[0]}:{first[1]})")
            return
        seen[domain] = (file, line)
        if domain.startswith(CATCH_ALL):
            patterns.append(domain)
        domains.append(domain)
        lines.append(line)
        indexes.append(index)

    listed = c.child_list(root, "domains", "domains")
    if listed is not None:
        for index, raw in enumerate(listed):
            add(raw, c.file, listed.line_of(index), index)

    list_file = ""
    from_file = c.string(root, "domains_from", "domains_from")
    if from_file is not None:
        try:
            list_file, text = read_list(from_file)
        except ListUnreadable as exc:
            c.error(root, "domains_from", "domains_from", str(exc))
        else:
            fast = _simple_list(text, seen, known)
            if fast is not None:  # a list of plain domains, one a line: no checks one by one
                domains.extend(fast)
                lines.extend(range(1, len(fast) + 1))
                indexes.extend(array("i", [-1]) * len(fast))
            else:
                for number, line in enumerate(text.splitlines(), start=1):
                    entry = line.split("#", 1)[0].strip()
                    if entry:
                        add(entry, list_file, number, -1)

    if "domains" not in root and "domains_from" not in root:
        c.error(root, None, "domains", "missing: list at least one domain")
    elif not domains and not c.has_errors:
        c.error(root, "domains", "domains", "list at least one domain")
    origins = DomainOrigins(c.file, list_file, _compact(lines), _compact(indexes))
    return domains, origins, patterns


def _compact(numbers: array[int]) -> Sequence[int]:
    return tuple(numbers) if len(numbers) <= 64 else numbers


# One line of a plain list: lower-case letters, digits and hyphens in labels of
# 1 to 63, at least two labels, no "--" (IDNA rules apply there, and to "xn--"),
# nothing else.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_PLAIN_LIST = re.compile(rf"(?>(?>{_LABEL}\.)+{_LABEL}\n)*+", re.ASCII)


def _simple_list(
    text: str, seen: Mapping[str, object], known: Collection[str] = ()
) -> list[str] | None:
    """The domains of a list that is only plain lower-case domains, one a line,
    ending with a line feed, with no repeats and none also in ``domains:``; else
    None, and the list is read line by line. A hoster's generated list of a
    million domains takes this path: its lines are checked by one regular
    expression over the whole text, or, when the previous version's domains are
    ``known``, only the lines that are new (a one-line change checks one line)."""
    if not text.endswith("\n") or "--" in text or not text.isascii():
        return None
    found = text[:-1].split("\n")
    unique = set(found)
    if len(unique) != len(found):
        return None
    if known:
        fresh = unique.difference(known)
        if fresh and _PLAIN_LIST.fullmatch("\n".join(fresh) + "\n") is None:
            return None
        longest = max(map(len, fresh), default=0)
    else:
        if _PLAIN_LIST.fullmatch(text) is None:
            return None
        longest = max(map(len, found))
    if longest > MAX_DOMAIN:
        return None
    if seen and not unique.isdisjoint(seen):
        return None
    return found


def _reason(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc)


def _servers(
    c: Checker,
    root: MarkedMap,
    key: str,
    types: tuple[ServerType, ...],
    pool: dict[Server, Server],
) -> list[Server]:
    listed = c.child_list(root, key, key)
    if listed is None:
        if key not in root:
            c.error(root, None, key, "missing: list at least one server")
        return []
    if not listed:
        c.error(root, key, key, "list at least one server")
    servers = []
    for index, raw in enumerate(listed):
        path = f"{key}[{index}]"
        entry = c.mapping(raw, path, listed.line_of(index))
        if entry is None:
            continue
        written = (path, types, _fingerprint(entry))
        server = _CHECKED_SERVERS.get(written)
        if server is None:
            problems = len(c.problems)
            server = _server(c, entry, path, types)
            if server is not None and len(c.problems) == problems:
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


def _server(
    c: Checker, entry: MarkedMap, path: str, types: tuple[ServerType, ...]
) -> Server | None:
    c.keys(entry, path, _SERVER_KEYS)
    default_type = types[0].value if len(types) == 1 else None
    type_name = c.choice(
        entry, "type", f"{path}.type", [t.value for t in types], default=default_type
    )
    host = c.hostname(entry, "host", f"{path}.host", placeholders=HOST_PLACEHOLDERS)
    security_name = c.choice(entry, "security", f"{path}.security", _SECURITY_NAMES)
    port = c.port(entry, "port", f"{path}.port")
    username = c.template(entry, "username", f"{path}.username", default=EMAILADDRESS)
    allowed_auth = _ALL_AUTH_NAMES
    outgoing_only: Mapping[str, str] = {}
    if types != (ServerType.SMTP,):
        allowed_auth = _INCOMING_AUTH_NAMES
        outgoing_only = _OUTGOING_ONLY_REASONS
    auth_names = c.choices(
        entry,
        "auth",
        f"{path}.auth",
        allowed_auth,
        default=Auth.PASSWORD_CLEARTEXT.value,
        elsewhere=outgoing_only,
    )
    pop3 = _pop3(c, entry, path, type_name)
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
        lines=_lines(entry),
        path=path,
    )


def _lines(entry: MarkedMap) -> dict[str, int]:
    """Where the server's keys (and its pop3 options, as ``pop3.KEY``) stand."""
    lines = dict(entry.key_lines) | {"": entry.line}
    pop3 = entry.get("pop3")
    if isinstance(pop3, MarkedMap):
        lines |= {f"pop3.{key}": line for key, line in pop3.key_lines.items()}
    return lines


def _pop3(c: Checker, entry: MarkedMap, path: str, type_name: str | None) -> Pop3Options | None:
    options = c.child_mapping(entry, "pop3", f"{path}.pop3")
    if options is None:
        return None
    if type_name != ServerType.POP3.value:
        c.error(entry, "pop3", f"{path}.pop3", "pop3 options belong on a server of type pop3")
    c.keys(options, f"{path}.pop3", _POP3_KEYS)
    leave = c.boolean(options, "leave_messages_on_server", f"{path}.pop3.leave_messages_on_server")
    days = c.integer(
        options,
        "days_to_leave_messages_on_server",
        f"{path}.pop3.days_to_leave_messages_on_server",
        minimum=1,
        maximum=36500,
    )
    biff = c.boolean(options, "download_on_biff", f"{path}.pop3.download_on_biff")
    return Pop3Options(leave, days, biff)


def _dav(c: Checker, root: MarkedMap, key: str) -> DavService | None:
    entry = c.child_mapping(root, key, key)
    if entry is None:
        return None
    c.keys(entry, key, ("url", "username"))
    url = c.url(entry, "url", f"{key}.url", required=True)
    username = c.template(entry, "username", f"{key}.username", default=EMAILADDRESS)
    return DavService(url, username) if url and username else None


def _url_only(c: Checker, root: MarkedMap, key: str) -> str | None:
    entry = c.child_mapping(root, key, key)
    if entry is None:
        return None
    c.keys(entry, key, ("url",))
    return c.url(entry, "url", f"{key}.url", required=True)


def _documentation(c: Checker, root: MarkedMap) -> list[Documentation]:
    listed = c.child_list(root, "documentation", "documentation")
    docs: list[Documentation] = []
    if listed is None:
        return docs
    for index, raw in enumerate(listed):
        path = f"documentation[{index}]"
        entry = c.mapping(raw, path, listed.line_of(index))
        if entry is None:
            continue
        c.keys(entry, path, ("url", "text"))
        url = c.url(entry, "url", f"{path}.url", required=True)
        texts = c.language_texts(entry, "text", f"{path}.text")
        if url is not None and texts is not None:
            docs.append(Documentation(url, texts))
    return docs


def _oauth2(c: Checker, root: MarkedMap) -> OAuth2 | None:
    entry = c.child_mapping(root, "oauth2", "oauth2")
    if entry is None:
        return None
    c.keys(entry, "oauth2", ("issuer", "scope", "auth_url", "token_url"))
    issuer = c.hostname(entry, "issuer", "oauth2.issuer")
    scope = c.string(entry, "scope", "oauth2.scope", required=True)
    auth_url = c.url(entry, "auth_url", "oauth2.auth_url", required=True)
    token_url = c.url(entry, "token_url", "oauth2.token_url", required=True)
    if issuer and scope and auth_url and token_url:
        return OAuth2(issuer, scope, auth_url, token_url)
    return None


def _mobileconfig(c: Checker, root: MarkedMap, provider_id: str, name: str) -> MobileConfig:
    default = default_mobileconfig(provider_id, name)
    entry = c.child_mapping(root, "mobileconfig", "mobileconfig")
    if entry is None:
        return default
    c.keys(entry, "mobileconfig", ("identifier", "organization"))
    identifier = c.string(entry, "identifier", "mobileconfig.identifier")
    if identifier is not None and not _REVERSE_DNS.match(identifier):
        c.error(
            entry,
            "identifier",
            "mobileconfig.identifier",
            f"{identifier!r} is not a reverse-DNS identifier such as com.example.mail",
        )
    organization = c.string(entry, "organization", "mobileconfig.organization")
    return MobileConfig(identifier or default.identifier, organization or default.organization)
