"""A provider's domains from its PostgreSQL lookup's ``domains_query`` (a control
panel's domain table), read like a ``domains_from`` list and re-read on the
reload schedule, so that several replicas serve one database's truth.

The query is a *dependency* of its domain file, as a ``domains_from`` file is:
its name (:func:`dependency`, the same in every process for the same settings)
stands among the file's dependencies, and its mark (:func:`mark`, asked by
every poll of the folder) is a digest of the rows. When the rows change, the
file is read again; when the database cannot be asked, the mark is
:data:`UNREACHABLE` and reading the file fails with the reason, so that its
last good version keeps serving (as for any file that breaks).
"""

from __future__ import annotations

import hashlib

from autoconf.lookup.sources import LookupFailed, connection_settings
from autoconf.model import SqlSource

PREFIX = "\0postgresql-domains:"
Mark = tuple[int, int, int, int]
UNREACHABLE: Mark = (0, 0, 0, 1)
# The queries of the files read by this process, by their dependency's name.
_QUERIES: dict[str, tuple[SqlSource, float]] = {}


def dependency(source: SqlSource, timeout: float) -> str:
    """The name the query stands under among its file's dependencies."""
    text = "\0".join(
        (source.connection, source.password_file, source.password_env, source.domains_query)
    )
    name = PREFIX + hashlib.sha256(f"{text}\0{timeout}".encode()).hexdigest()[:32]
    _QUERIES[name] = (source, timeout)
    return name


def is_query(name: str) -> bool:
    return name.startswith(PREFIX)


def mark(name: str, max_bytes: int) -> Mark:
    """A digest of the query's rows now; UNREACHABLE when it cannot be asked (or was
    never registered in this process: the file is read again, which registers it)."""
    known = _QUERIES.get(name)
    if known is None:
        return UNREACHABLE
    try:
        text = fetch(*known, max_bytes=max_bytes)
    except LookupFailed:
        return UNREACHABLE
    digest = hashlib.blake2b(text.encode(), digest_size=16).digest()
    return (
        int.from_bytes(digest[:4], "big"),
        int.from_bytes(digest[4:8], "big"),
        int.from_bytes(digest[8:12], "big"),
        int.from_bytes(digest[12:], "big") | 2,  # never UNREACHABLE
    )


def fetch_registered(name: str, max_bytes: int) -> str:
    known = _QUERIES.get(name)
    if known is None:
        raise LookupFailed("the query is not known to this process")
    return fetch(*known, max_bytes=max_bytes)


def fetch(source: SqlSource, timeout: float, *, max_bytes: int) -> str:
    """The query's first column, one domain a line, in the order the rows came
    (write ORDER BY for a stable one); LookupFailed with the reason."""
    import psycopg

    kwargs = connection_settings(source, timeout)
    lines: list[str] = []
    size = 0
    try:
        with psycopg.connect(source.connection, **kwargs) as connection:
            cursor = connection.execute(source.domains_query.encode())  # no parameters
            while rows := cursor.fetchmany(10_000):
                for row in rows:
                    value = row[0] if row else None
                    if not isinstance(value, str):
                        raise LookupFailed(f"domains_query returned {type(value).__name__}")
                    size += len(value) + 1
                    if size > max_bytes:
                        raise LookupFailed(f"domains_query returned over {max_bytes} bytes")
                    lines.append(value.strip())
    except psycopg.errors.QueryCanceled:
        raise LookupFailed(f"domains_query took longer than {timeout:g} s") from None
    except psycopg.Error as exc:
        state = f" (SQLSTATE {exc.sqlstate})" if exc.sqlstate else ""
        raise LookupFailed(f"PostgreSQL: {type(exc).__name__}{state}") from None
    return "".join(f"{line}\n" for line in lines)
