"""Documents pre-rendered once per provider, with slots filled in per request.

A renderer builds its whole document with lxml at load time, placeholders
(``%EMAILADDRESS%``…) standing where the request's values go; a request then
costs one pass over a short list of pieces. Values are escaped by the caller
for the document's syntax before they are filled in.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping

from autoconf import placeholders
from autoconf.address import Address, xml_escape
from autoconf.placeholders import PLACEHOLDERS

__all__ = ["PLACEHOLDERS", "Template", "placeholder_values", "slot"]


# Slots of our own (per-provider names, per-address UUIDs) carry a token made
# at start-up, so no text in a domain file can be mistaken for one.
_TOKEN = secrets.token_hex(6)
_SLOTS = re.compile(
    "(" + "|".join(re.escape(p) for p in PLACEHOLDERS) + r"|\{" + _TOKEN + r":[a-z_]+\})"
)


def slot(name: str) -> str:
    """The marker of a named slot, to put in a document before it is serialized."""
    return f"{{{_TOKEN}:{name}}}"


class Template:
    """Text split at its slots; ``fill`` joins it with values for the slots."""

    __slots__ = ("_pieces",)

    def __init__(self, text: str) -> None:
        # Even positions are literal text, odd positions are slot names.
        self._pieces = tuple(_SLOTS.split(text))

    def fill(self, values: Mapping[str, str]) -> bytes:
        """Join the pieces; a placeholder with no value stays (for the client to fill)."""
        pieces = self._pieces
        out = list(pieces)
        for index in range(1, len(pieces), 2):
            out[index] = values.get(pieces[index], pieces[index])
        return "".join(out).encode("utf-8")


def placeholder_values(address: Address | None, domain: str) -> dict[str, str]:
    """What a request tells, XML-escaped: the whole address, or only the domain."""
    return placeholders.values(address, domain, xml_escape)
