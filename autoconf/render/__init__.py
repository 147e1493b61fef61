"""Renderers: one output format each, pure functions of provider and address.

What does not depend on the address is compiled at load. Providers that differ
only in their names (a hoster's one-domain files) share one compiled shape;
each keeps only its escaped names for the shape's slots.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from weakref import WeakValueDictionary

from autoconf.model import Provider
from autoconf.render import autoconfig, autodiscover, dav, mobileconfig
from autoconf.render.identity import identity_values, shape_key, shape_of
from autoconf.render.template import Template
from autoconf.render.user import UserSlots, with_user_slots


@dataclass(frozen=True, slots=True, weakref_slot=True)
class _Shape:
    autoconfig: Template
    autodiscover: autodiscover.AutodiscoverDocuments
    mobileconfig: mobileconfig.Shape
    dav: dav.DavTargets


@dataclass(frozen=True, slots=True)
class Documents:
    autoconfig: autoconfig.AutoconfigDocument
    autodiscover: autodiscover.AutodiscoverDocuments
    mobileconfig: mobileconfig.ProfileDocument
    dav: dav.DavTargets
    shape: _Shape | None = field(default=None, repr=False)  # keeps the shared shape alive
    # Where a per-user lookup's values go (None: the provider has no lookup).
    user_slots: UserSlots | None = None


class Compiler:
    """Compiles providers, each distinct shape once.

    Shapes are held weakly: when a reload drops the last provider of a shape,
    its documents go too.
    """

    def __init__(self) -> None:
        self._shapes: WeakValueDictionary[tuple[object, ...], _Shape] = WeakValueDictionary()

    def __call__(self, provider: Provider) -> Documents:
        key = shape_key(provider)
        shape = self._shapes.get(key)
        if shape is None:
            slotted = shape_of(provider)
            shape = _Shape(
                autoconfig.compile_shape(slotted),
                autodiscover.compile_provider(slotted),
                mobileconfig.compile_shape(slotted),
                dav.compile_provider(slotted),
            )
            self._shapes[key] = shape
        block, listed = autoconfig.domains_block(provider)
        identity = identity_values(provider, block)
        return Documents(
            autoconfig.AutoconfigDocument(shape.autoconfig, identity, listed),
            shape.autodiscover,
            mobileconfig.with_identity(shape.mobileconfig, provider, identity),
            shape.dav,
            shape,
            with_user_slots(provider)[1],
        )


def compile_provider(provider: Provider) -> Documents:
    """One provider alone (the service shares shapes through a Compiler)."""
    return Compiler()(provider)
