"""A domain file's ``lookup:``: per-user logins and servers, checked at load.

The source is a map file (read here, bounded, like a ``domains_from`` list),
a PostgreSQL query or an LDAP search (checked here, asked per request by
:mod:`autoconf.lookup`). Every problem is recorded with its line, as the rest
of the file's are. Credentials are never in the domain file: a connection
string or URL that carries a password is an error.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
from collections.abc import Callable
from pathlib import Path

from autoconf import typed_read as read
from autoconf.domain_list import ListUnreadable, ReadList
from autoconf.lookup.domains import dependency
from autoconf.lookup.values import checked_login, checked_user
from autoconf.model import (
    LOOKUP_KEYS,
    LdapSource,
    Lookup,
    MapSource,
    SqlSource,
    UserSettings,
)
from autoconf.typed_read import Node
from autoconf.values import Invalid, describe

_LOOKUP_KEYS = ("map", "postgresql", "ldap", "keys", "timeout", "cache")
_SOURCES = ("map", "postgresql", "ldap")
_SQL_KEYS = (
    "connection",
    "query",
    "alias_query",
    "domains_query",
    "password_file",
    "password_env",
)
_LDAP_KEYS = (
    "url",
    "base",
    "filter",
    "alias_filter",
    "bind_dn",
    "password_file",
    "password_env",
    "login",
    "incoming_host",
    "outgoing_host",
)
_FIELDS = ("login", "incoming_host", "outgoing_host")
_MAP_FIELDS = (*_FIELDS, "alias")
# What the optional extras bring, and how to install them.
_EXTRAS = {"postgresql": ("psycopg_pool", "sql"), "ldap": ("ldap3", "ldap")}
MAX_TIMEOUT = 30.0
MAX_CACHE = 86_400.0
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_SQL_PARAMETER = "%(key)s"


def read_lookup(root: Node, base_dir: Path, read_list: ReadList) -> Lookup | None:
    """The file's lookup (None when it has none, or on any problem, recorded)."""
    entry = read.child(root, "lookup")
    if entry is None:  # absent, or not a mapping (recorded)
        return None
    errors = _errors(entry)
    read.keys(entry, _LOOKUP_KEYS)
    named = [key for key in _SOURCES if key in entry]
    if len(named) != 1:
        message = "give exactly one source: map, postgresql or ldap"
        entry.error(named[1] if len(named) > 1 else None, message)
        return None
    kind = named[0]
    keys = _keys(entry)
    timeout = _seconds(entry, "timeout", 2.0, 0.05, MAX_TIMEOUT)
    cache = _seconds(entry, "cache", 300.0, 0.0, MAX_CACHE)
    source: MapSource | SqlSource | LdapSource | None
    if kind == "map":
        source = _map(entry, read_list)
    else:
        module, extra = _EXTRAS[kind]
        if importlib.util.find_spec(module) is None:
            entry.error(
                kind,
                f"the {kind} source needs the {extra!r} extra, which is not installed: "
                f"pip install 'mail-autoconf[{extra}]'",
            )
        source = _sql(entry, base_dir) if kind == "postgresql" else _ldap(entry, base_dir)
    if source is None or keys is None or timeout is None or cache is None:
        return None
    if "alias" in keys and isinstance(source, SqlSource | LdapSource):
        alias_key = "alias_query" if isinstance(source, SqlSource) else "alias_filter"
        if not (source.alias_query if isinstance(source, SqlSource) else source.alias_filter):
            entry.error("keys", f"'alias' needs {kind}.{alias_key}")
    if _errors(entry) > errors:
        return None
    return Lookup(source, keys, timeout, cache)


def domains_query_reader(
    root: Node, lookup: Lookup | None, read_list: ReadList
) -> Callable[[], tuple[str, str]] | None:
    """What reads the lookup's domains_query as a list (None: it has none). The
    list is read through ``read_list`` under the query's dependency name (see
    :mod:`autoconf.lookup.domains`), which bounds it as a domains_from file."""
    source = lookup.source if lookup is not None else None
    if not isinstance(source, SqlSource) or not source.domains_query:
        return None
    if "domains_from" in root:
        root.error("domains_from", "give domains_from or lookup.postgresql.domains_query, not both")
        return None
    name = dependency(source, lookup.timeout)  # type: ignore[union-attr]
    return lambda: read_list(name)


def _errors(node: Node) -> int:
    return sum(1 for p in node.problems.found if p.is_error)


def _keys(entry: Node) -> tuple[str, ...] | None:
    picked = read.choices(entry, "keys", LOOKUP_KEYS, default="address")
    if "keys" not in entry:
        return ("address", "localpart")
    if picked is not None and len(set(picked)) != len(picked):
        entry.error("keys", "a key is listed twice")
        return None
    return picked


def _seconds(entry: Node, key: str, default: float, low: float, high: float) -> float | None:
    if key not in entry:
        return default
    value = entry.map[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        entry.error(key, f"expected a number of seconds, got {describe(value)}")
        return None
    if not low <= value <= high:
        entry.error(key, f"{value} is out of range ({low:g} to {high:g} seconds)")
        return None
    return float(value)


def _credentials(node: Node, base_dir: Path) -> tuple[str, str] | None:
    """(password_file made absolute, password_env): at most one of them."""
    given = [key for key in ("password_file", "password_env") if key in node]
    if len(given) > 1:
        node.error(given[1], "give password_file or password_env, not both")
        return None
    file = read.string(node, "password_file") or ""
    env = read.string(node, "password_env") or ""
    if env and not _ENV_NAME.match(env):
        node.error("password_env", f"{env!r} is not an environment variable's name")
        return None
    return (str(base_dir / file) if file else ""), env


def _sql(entry: Node, base_dir: Path) -> SqlSource | None:
    node = read.child(entry, "postgresql")
    if node is None:
        return None
    read.keys(node, _SQL_KEYS)
    connection = read.string(node, "connection", required=True)
    query = read.string(node, "query", required=True)
    alias_query = read.string(node, "alias_query") or ""
    domains_query = read.string(node, "domains_query") or ""
    if "%(" in domains_query:
        node.error("domains_query", "the domains query takes no parameter")
        domains_query = ""
    credentials = _credentials(node, base_dir)
    if connection is not None and re.search(r"(?i)\bpassword\s*=|://[^/@]*:[^/@]*@", connection):
        node.error(
            "connection",
            "a password does not belong in the domain file: use password_file or password_env",
        )
        connection = None
    for key, text in (("query", query), ("alias_query", alias_query)):
        if text and not _one_parameter(text):
            node.error(
                key,
                f"the query takes the key as {_SQL_PARAMETER} (once or more) and no other "
                "parameter; write a literal % as %%",
            )
            query = None
    if connection is None or query is None or credentials is None:
        return None
    return SqlSource(connection, query, alias_query, *credentials, domains_query)


def _one_parameter(query: str) -> bool:
    """Whether ``%(key)s`` is the query's one parameter (psycopg's syntax)."""
    rest = query.replace("%%", "")
    return _SQL_PARAMETER in rest and "%" not in rest.replace(_SQL_PARAMETER, "")


def _ldap(entry: Node, base_dir: Path) -> LdapSource | None:
    node = read.child(entry, "ldap")
    if node is None:
        return None
    read.keys(node, _LDAP_KEYS)
    url = read.string(node, "url", required=True)
    base = read.string(node, "base", required=True)
    search = read.string(node, "filter", required=True)
    alias_filter = read.string(node, "alias_filter") or ""
    bind_dn = read.string(node, "bind_dn") or ""
    credentials = _credentials(node, base_dir)
    if url is not None and not re.match(r"ldaps?://[^/@\s]+/?\Z", url):
        node.error("url", f"{url!r} is not ldap://HOST[:PORT] or ldaps://HOST[:PORT]")
        url = None
    for key, text in (("filter", search), ("alias_filter", alias_filter)):
        if text and ("{key}" not in text or not (text.startswith("(") and text.endswith(")"))):
            node.error(key, "an LDAP filter in parentheses with {key} where the key goes")
            search = None
    attributes = []
    for what in _FIELDS:
        name = read.string(node, what)
        if name is not None and not re.match(r"[A-Za-z][A-Za-z0-9-]*\Z", name):
            node.error(what, f"{name!r} is not an attribute name")
        elif name is not None:
            attributes.append((what, name))
    if "login" not in node:
        node.missing("login", "missing: the attribute that holds the login (uid)")
    if url is None or base is None or search is None or credentials is None:
        return None
    return LdapSource(url, base, search, alias_filter, bind_dn, *credentials, tuple(attributes))


# -- the map file -------------------------------------------------------------


def _map(entry: Node, read_list: ReadList) -> MapSource | None:
    name = read.string(entry, "map")
    if name is None:
        return None
    try:
        file, text = read_list(name)
    except ListUnreadable as exc:
        entry.error("map", str(exc))
        return None
    problems = entry.problems
    entries: dict[str, UserSettings] = {}
    aliases: dict[str, tuple[str, int]] = {}
    lines: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        words = raw.split("#", 1)[0].split()
        if not words:
            continue

        def error(message: str, number: int = number) -> None:
            problems.error(number, "lookup.map", message, file)

        key = words[0].lower()
        if key in lines:
            error(f"{key} is given twice (also line {lines[key]})")
            continue
        lines[key] = number
        try:
            found = parse_map_values(words[1:])
        except Invalid as exc:
            error(f"{key}: {exc.messages[0]}")
            continue
        if isinstance(found, str):
            if "@" not in key:
                error(f"{key}: an alias is a whole address")
            else:
                aliases[key] = (found, number)
        else:
            entries[key] = found
    resolved: dict[str, UserSettings] = {}
    for alias, (target, number) in aliases.items():
        user = entries.get(target)
        if user is None:
            message = f"{alias}: alias={target} names no user line of this file"
            problems.error(number, "lookup.map", message, file)
        else:
            resolved[alias] = user
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return MapSource(file, {**entries, **{f"alias:{k}": v for k, v in resolved.items()}}, digest)


def parse_map_values(words: list[str]) -> UserSettings | str:
    """A map line's values: ``login`` alone, or ``key=value`` words; an alias
    (``alias=ADDRESS``) is its target address."""
    if len(words) == 1 and "=" not in words[0]:
        return UserSettings(checked_login(words[0]))
    if not words:
        raise Invalid("no login given (write 'ADDRESS LOGIN' or 'ADDRESS login=...')")
    given: dict[str, str] = {}
    for word in words:
        field, equals, value = word.partition("=")
        if not equals or field not in _MAP_FIELDS:
            allowed = ", ".join(f"{f}=" for f in _MAP_FIELDS)
            raise Invalid(f"{word!r} is not one of {allowed}")
        if field in given:
            raise Invalid(f"{field}= is given twice")
        given[field] = value
    if "alias" in given:
        if len(given) > 1:
            raise Invalid("an alias line has alias= alone")
        return given["alias"].lower()
    return checked_user(given)
