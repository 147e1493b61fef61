"""The sources a per-user lookup asks: a map file, PostgreSQL, LDAP.

Each :class:`Source` answers one key at a time (``ask(step, key)``): the
user's settings, None when the key is not there, or an exception when the
source is down, slow or answers garbage (:class:`LookupFailed`). PostgreSQL
and LDAP keep a small pool of connections per process, made on first use
(after gunicorn has forked the worker); psycopg and ldap3 are imported only
then, so that the service runs without either extra until a file asks for it.
"""

from __future__ import annotations

import math
import os
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from autoconf.lookup.values import checked_user
from autoconf.model import LdapSource, Lookup, MapSource, SqlSource, UserSettings
from autoconf.values import Invalid

# Connections a source keeps per process; lookups run on as many threads.
POOL_SIZE = 4
MAX_PASSWORD_BYTES = 4096


class LookupFailed(Exception):
    """The source could not answer; the message says why, and never names the key."""


class Source(Protocol):
    def ask(self, step: str, key: str) -> UserSettings | None: ...

    def close(self) -> None: ...


def open_source(lookup: Lookup) -> Source:
    source = lookup.source
    if isinstance(source, MapSource):
        return MapLookup(source)
    if isinstance(source, SqlSource):
        return SqlLookup(source, lookup.timeout)
    return LdapLookup(source, lookup.timeout)


def checked(row: dict[str, Any]) -> UserSettings | None:
    """A row a source returned, as settings (None: all empty, a miss); LookupFailed
    when it is garbage."""
    given = {}
    for field in ("login", "incoming_host", "outgoing_host"):
        value = row.get(field)
        if isinstance(value, list | tuple):
            value = value[0] if value else None
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if value is not None and not isinstance(value, str):
            raise LookupFailed(f"the source returned {type(value).__name__} as {field}")
        given[field] = (value or "").strip()
    if not any(given.values()):
        return None
    try:
        return checked_user(given)
    except Invalid:  # its message quotes the value: a user's data, kept out of logs
        raise LookupFailed(
            "the source returned a row that is not a login and host names "
            "(white space, over 254 characters, or no host name)"
        ) from None


def password(file: str, env: str) -> str | None:
    """The password from its file (bounded, one line) or its environment variable."""
    if env:
        value = os.environ.get(env)
        if value is None:
            raise LookupFailed(f"the environment variable {env} (password_env) is not set")
        return value
    if not file:
        return None
    try:
        with open(file, "rb") as handle:
            data = handle.read(MAX_PASSWORD_BYTES + 1)
    except OSError as exc:
        raise LookupFailed(f"cannot read the password_file: {exc.strerror}") from None
    if len(data) > MAX_PASSWORD_BYTES:
        raise LookupFailed("the password_file is too large")
    return data.decode("utf-8", "replace").rstrip("\r\n")


class MapLookup:
    """The map file's lines, read with the domain file."""

    def __init__(self, source: MapSource) -> None:
        self.entries = source.entries

    def ask(self, step: str, key: str) -> UserSettings | None:
        return self.entries.get(f"alias:{key}" if step == "alias" else key)

    def close(self) -> None:
        pass


class _Pool:
    """Up to POOL_SIZE connections, each used by one thread at a time; one that
    failed is dropped (the next use makes a new one)."""

    def __init__(self, make: Callable[[], Any], close: Callable[[Any], None]) -> None:
        self._make = make
        self._close = close
        self._idle: queue.LifoQueue[Any] = queue.LifoQueue()
        self._lock = threading.Lock()
        self._closed = False

    @contextmanager
    def connection(self) -> Iterator[Any]:
        try:
            connection = self._idle.get_nowait()
        except queue.Empty:
            connection = self._make()
        try:
            yield connection
        except BaseException:
            self._discard(connection)
            raise
        with self._lock:
            if self._closed or self._idle.qsize() >= POOL_SIZE:
                self._discard(connection)
            else:
                self._idle.put(connection)

    def _discard(self, connection: Any) -> None:
        try:
            self._close(connection)
        except Exception:  # noqa: S110 -- a broken connection's close may fail too
            pass

    def close(self) -> None:
        with self._lock:
            self._closed = True
        while True:
            try:
                self._discard(self._idle.get_nowait())
            except queue.Empty:
                return


def one_row(query: str) -> bytes:
    """The admin's query, answering one row whether it finds one or not."""
    inner = query.strip().rstrip(";")
    return f"SELECT q.* FROM (VALUES (1)) AS one (o) LEFT JOIN ({inner}) AS q ON true".encode()


def connection_settings(source: SqlSource, timeout: float) -> dict[str, Any]:
    """psycopg's connection settings for a source: the password from its file or
    variable, read-only sessions, the statement and connect timeouts."""
    milliseconds = max(1, int(timeout * 1000))
    settings: dict[str, Any] = {
        "autocommit": True,
        "connect_timeout": max(2, math.ceil(timeout)),  # libpq's least is 2 s
        "options": f"-c statement_timeout={milliseconds} -c default_transaction_read_only=on",
        "application_name": "mail-autoconf",
    }
    secret = password(source.password_file, source.password_env)
    if secret is not None:
        settings["password"] = secret
    return settings


class SqlLookup:
    """A PostgreSQL query through psycopg 3's connection pool: read-only
    sessions, a statement timeout, the key as a bound parameter."""

    def __init__(self, source: SqlSource, timeout: float) -> None:
        from psycopg.rows import dict_row
        from psycopg_pool import ConnectionPool

        self.source = source
        self.timeout = timeout
        kwargs = connection_settings(source, timeout) | {"row_factory": dict_row}
        # Each query as one row always: the user's, or NULLs when there is none, so
        # that a miss sends and decodes what a hit does (the privacy rule's time).
        self.queries = {
            "key": one_row(source.query),
            "alias": one_row(source.alias_query) if source.alias_query else "",
        }
        self.pool = ConnectionPool(
            source.connection,
            kwargs=kwargs,
            min_size=1,
            max_size=POOL_SIZE,
            timeout=timeout,
            reconnect_timeout=0,  # keep trying: the database may come back
            open=False,
            name="mail-autoconf",
        )
        self.pool.open(wait=False)

    def ask(self, step: str, key: str) -> UserSettings | None:
        import psycopg
        import psycopg_pool

        query = self.queries["alias" if step == "alias" else "key"]
        try:
            with self.pool.connection(timeout=self.timeout) as connection:
                rows = connection.execute(query, {"key": key}).fetchmany(2)
        except psycopg_pool.PoolTimeout:
            raise LookupFailed(f"no connection to PostgreSQL within {self.timeout:g} s") from None
        except psycopg.errors.QueryCanceled:
            raise LookupFailed(f"the query took longer than {self.timeout:g} s") from None
        except psycopg.Error as exc:
            # The class and SQLSTATE only: a server's message may quote the key.
            state = f" (SQLSTATE {exc.sqlstate})" if exc.sqlstate else ""
            raise LookupFailed(f"PostgreSQL: {type(exc).__name__}{state}") from None
        if len(rows) > 1:
            raise LookupFailed("the query returned more than one row for a key")
        row: dict[str, Any] = rows[0]  # type: ignore[assignment]  # dict_row
        return checked(row)

    def close(self) -> None:
        self.pool.close(timeout=1.0)


class LdapLookup:
    """An LDAP search through ldap3 (a pool of synchronous connections, bound
    once each), the key escaped into the filter (RFC 4515)."""

    def __init__(self, source: LdapSource, timeout: float) -> None:
        import ldap3

        self.source = source
        self.timeout = timeout
        self.secret = password(source.password_file, source.password_env)
        self.attributes = dict(source.attributes)
        # Whole seconds (ldap3 packs them into socket options); the runner's own
        # timeout bounds the lookup to a fraction of a second all the same.
        seconds = max(1, math.ceil(timeout))
        self.server = ldap3.Server(source.url, connect_timeout=seconds, get_info=ldap3.NONE)

        def make() -> Any:
            return ldap3.Connection(
                self.server,
                user=source.bind_dn or None,
                password=self.secret,
                auto_bind=True,
                read_only=True,
                receive_timeout=seconds,
                raise_exceptions=False,
            )

        self.pool = _Pool(make, lambda connection: connection.unbind())

    def ask(self, step: str, key: str) -> UserSettings | None:
        import ldap3
        from ldap3.core.exceptions import LDAPException
        from ldap3.utils.conv import escape_filter_chars

        template = self.source.alias_filter if step == "alias" else self.source.filter
        search = template.replace("{key}", escape_filter_chars(key))
        try:
            with self.pool.connection() as connection:
                ok = connection.search(
                    self.source.base,
                    search,
                    search_scope=ldap3.SUBTREE,
                    attributes=list(self.attributes.values()),
                    size_limit=2,
                    time_limit=max(1, math.ceil(self.timeout)),
                )
                result = connection.result or {}
                entries = [
                    e for e in connection.response or () if e.get("type") == "searchResEntry"
                ]
                if not ok and result.get("result") not in (0, 32):  # 32: no such object
                    raise LookupFailed(f"LDAP: {result.get('description', 'search failed')}")
        except LDAPException as exc:
            raise LookupFailed(f"LDAP: {type(exc).__name__}") from None
        if not entries:
            return None
        if len(entries) > 1:
            raise LookupFailed("the search found more than one entry for a key")
        attributes = entries[0].get("attributes", {})
        return checked({what: attributes.get(name) for what, name in self.attributes.items()})

    def close(self) -> None:
        self.pool.close()
