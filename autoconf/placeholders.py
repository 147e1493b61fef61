"""The placeholders a domain file may use, and their one filling.

``%EMAILADDRESS%``, ``%EMAILLOCALPART%`` and ``%EMAILDOMAIN%`` stand where the
asker's address goes (a user name, a host, a URL); a host may use only
``%EMAILDOMAIN%``. What is written is checked against :data:`PLACEHOLDER_LIKE`
(a misspelt one is an error with a hint); what is answered is filled from
:func:`values`, escaped for the document it goes into.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from autoconf.address import Address

EMAILADDRESS = "%EMAILADDRESS%"
EMAILLOCALPART = "%EMAILLOCALPART%"
EMAILDOMAIN = "%EMAILDOMAIN%"
PLACEHOLDERS = (EMAILADDRESS, EMAILLOCALPART, EMAILDOMAIN)
HOST_PLACEHOLDERS = (EMAILDOMAIN,)
# What looks like a placeholder in a file (a misspelt one included).
PLACEHOLDER_LIKE = re.compile(r"%[A-Za-z][A-Za-z_]{3,}%?")


def _as_is(text: str) -> str:
    return text


def values(
    address: Address | None, domain: str, escape: Callable[[str], str] = _as_is
) -> dict[str, str]:
    """What a request tells, escaped: the whole address, or only the domain.

    With only the domain, the rest stays for the client to fill, but for an
    internationalised domain ``%EMAILADDRESS%`` becomes ``%EMAILLOCALPART%@DOMAIN``
    (its A-labels): a client filling ``%EMAILADDRESS%`` itself writes the domain
    as its user typed it (``müller.example``), the answer to the address has
    ``xn--mller-kva.example``, and one user would have two login names. An
    ASCII domain is left to the client: the domain answered may not be the
    user's own (Thunderbird for Android's MX path asks the hoster's name)."""
    if address is None:
        filled = {EMAILDOMAIN: escape(domain)}
        if "xn--" in domain:
            filled[EMAILADDRESS] = f"{EMAILLOCALPART}@{escape(domain)}"
        return filled
    return {
        EMAILADDRESS: escape(address.full),
        EMAILLOCALPART: escape(address.local),
        EMAILDOMAIN: escape(address.domain),
    }


def fill(text: str, filled: Mapping[str, str]) -> str:
    """``text`` with each placeholder that has a value replaced by it."""
    for placeholder, value in filled.items():
        text = text.replace(placeholder, value)
    return text
