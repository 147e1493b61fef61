"""Where a per-user lookup's values go: slots in the shape of a provider with a lookup.

A provider with a ``lookup`` has each server's user name and host as a slot of
its compiled documents, so that one template answers every address, found or
not: the *same shape, hit or miss* (docs/security.md#per-user-lookups). A slot
is filled with what the lookup found (the login, the user's incoming or
outgoing host), else with the server's own text, placeholders filled, exactly
as the provider answers without a lookup. Servers that write the same text
share a slot, so that what the documents say of equal logins (Outlook's
``UsePOPAuth``, Apple's ``OutgoingPasswordSameAsIncomingPassword``) stays as
it is without a lookup.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from autoconf import placeholders
from autoconf.address import Address, xml_escape
from autoconf.model import Provider, Server, UserSettings
from autoconf.render.template import placeholder_values, slot

LOGIN = "login"
INCOMING_HOST = "incoming_host"
OUTGOING_HOST = "outgoing_host"


@dataclass(frozen=True, slots=True)
class UserSlots:
    """Each slot of a shape's documents that a lookup fills: (its marker, the
    field of :class:`UserSettings` that fills it, its default: the server's
    text, XML-escaped, placeholders still in)."""

    slots: tuple[tuple[str, str, str], ...]


def _letters(number: int) -> str:
    # Slot names are lower-case letters and underscores (render.template).
    text = ""
    while True:
        number, digit = divmod(number, 26)
        text = chr(ord("a") + digit) + text
        if not number:
            return text
        number -= 1


class _Slotter:
    def __init__(self) -> None:
        self.slots: dict[tuple[str, str], str] = {}

    def __call__(self, field: str, text: str) -> str:
        key = (field, text)
        if key not in self.slots:
            self.slots[key] = slot(f"user_{field}_{_letters(len(self.slots))}")
        return self.slots[key]


def with_user_slots(provider: Provider) -> tuple[Provider, UserSlots | None]:
    """The provider with its servers' user names and hosts as slots, and those
    slots; the provider itself and None when it has no lookup."""
    if provider.lookup is None:
        return provider, None
    slotter = _Slotter()

    def slotted(server: Server, host_field: str) -> Server:
        return replace(
            server,
            host=slotter(host_field, server.host),
            username=slotter(LOGIN, server.username),
        )

    shape = replace(
        provider,
        incoming=tuple(slotted(s, INCOMING_HOST) for s in provider.incoming),
        outgoing=tuple(slotted(s, OUTGOING_HOST) for s in provider.outgoing),
    )
    slots = tuple(
        (marker, field, xml_escape(text)) for (field, text), marker in slotter.slots.items()
    )
    return shape, UserSlots(slots)


def user_values(
    slots: UserSlots | None, address: Address | None, domain: str, user: UserSettings | None
) -> dict[str, str]:
    """The slots' values for one request, XML-escaped: what the lookup found,
    else each server's own text filled as without a lookup."""
    if slots is None:
        return {}
    filled = placeholder_values(address, domain)
    values = {}
    for marker, field, default in slots.slots:
        found = getattr(user, field) if user is not None else ""
        values[marker] = xml_escape(found) if found else placeholders.fill(default, filled)
    return values


def server_fields(
    server: Server, outgoing: bool, address: Address, user: UserSettings | None
) -> tuple[str, str]:
    """(host, user name) of one server for ``address``, not escaped (the page's)."""
    filled: Mapping[str, str] = placeholders.values(address, address.domain)
    host = user.outgoing_host if user and outgoing else user.incoming_host if user else ""
    login = user.login if user else ""
    return (
        host or placeholders.fill(server.host, filled),
        login or placeholders.fill(server.username, filled),
    )
