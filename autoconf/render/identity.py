"""A provider's own names, apart from the rest of its settings.

A hoster's 100,000 one-domain files differ only in their domain (and the id,
names and profile identifier derived from it). Their documents are compiled
once for the *shape* they share (the provider with these names replaced by
slots) and filled per provider with the escaped names kept here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, replace

from autoconf.address import xml_escape
from autoconf.model import MobileConfig, Provider, default_mobileconfig
from autoconf.render.template import slot
from autoconf.render.user import with_user_slots

ID = slot("id")
NAME = slot("name")
SHORT_NAME = slot("short_name")
IDENTIFIER = slot("identifier")
ORGANIZATION = slot("organization")
DOMAINS = slot("domains")


def _slotted(value: str, name_slot: str) -> str:
    # A name with a placeholder in it (ISPDB files use "%EMAILDOMAIN%" as a
    # display name) stays in the shape, where the request's values fill it.
    return value if "%" in value else name_slot


def _shape_names(provider: Provider) -> dict[str, object]:
    """The fields a shape has instead of the provider's own."""
    mobileconfig = mobileconfig_of(provider)
    return {
        "id": _slotted(provider.id, ID),
        "name": _slotted(provider.name, NAME),
        "short_name": _slotted(provider.short_name, SHORT_NAME),
        "domains": (),
        "file": "",
        "origins": None,
        "mobileconfig": MobileConfig(
            _slotted(mobileconfig.identifier, IDENTIFIER),
            _slotted(mobileconfig.organization, ORGANIZATION),
        ),
    }


def shape_of(provider: Provider) -> Provider:
    """The provider with its names as slots: equal for providers that differ only in
    names. A provider with a lookup has its servers' user names and hosts as slots too
    (:mod:`autoconf.render.user`)."""
    return with_user_slots(replace(provider, **_shape_names(provider)))[0]  # type: ignore[arg-type]


_COMPARED = tuple(f.name for f in fields(Provider) if f.compare)


def shape_key(provider: Provider) -> tuple[object, ...]:
    """What ``shape_of(provider)`` is compared by, without building it (a third of
    the time): equal keys, equal shapes."""
    names = _shape_names(provider)
    return tuple(names[n] if n in names else getattr(provider, n) for n in _COMPARED)


def mobileconfig_of(provider: Provider) -> MobileConfig:
    return provider.mobileconfig or default_mobileconfig(provider.id, provider.name)


def identity_values(provider: Provider, domains_block: str) -> Mapping[str, str]:
    """The provider's names, XML-escaped, for the slots of its shape's documents."""
    mobileconfig = mobileconfig_of(provider)
    return {
        ID: xml_escape(provider.id),
        NAME: xml_escape(provider.name),
        SHORT_NAME: xml_escape(provider.short_name),
        IDENTIFIER: xml_escape(mobileconfig.identifier),
        ORGANIZATION: xml_escape(mobileconfig.organization),
        DOMAINS: domains_block,
    }
