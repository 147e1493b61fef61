"""What any lookup source returns, checked: a login and host names a client can use."""

from __future__ import annotations

import re

from autoconf.model import UserSettings
from autoconf.values import Invalid, check_hostname

# A login as clients take it: no white space or control characters, at most 254.
_LOGIN = re.compile(r"[^\s\x00-\x1f\x7f]{1,254}\Z")


def checked_login(value: str) -> str:
    if not _LOGIN.match(value):
        raise Invalid(f"{value[:60]!r} is not a login (1 to 254 characters, no spaces)")
    return value


def checked_user(given: dict[str, str]) -> UserSettings:
    """A lookup's result, checked: what any source returns passes here."""
    login = checked_login(given["login"]) if given.get("login") else ""
    hosts = []
    for field in ("incoming_host", "outgoing_host"):
        value = given.get(field) or ""
        if value:
            host, problem = check_hostname(value, ())
            if problem:
                raise Invalid(f"{field}: {problem}")
            value = host
        hosts.append(value)
    if not (login or hosts[0] or hosts[1]):
        raise Invalid("neither a login nor a host")
    return UserSettings(login, hosts[0], hosts[1])
