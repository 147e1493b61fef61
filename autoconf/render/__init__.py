"""Renderers: one output format each, pure functions of provider and address.

:func:`compile_provider` does at load time everything that does not depend on
the address; the registry keeps its result beside each provider.
"""

from __future__ import annotations

from dataclasses import dataclass

from autoconf.model import Provider
from autoconf.render import autoconfig, autodiscover, mobileconfig


@dataclass(frozen=True, slots=True)
class Compiled:
    autoconfig: autoconfig.Compiled
    autodiscover: autodiscover.Compiled
    mobileconfig: mobileconfig.Compiled


def compile_provider(provider: Provider) -> Compiled:
    return Compiled(
        autoconfig=autoconfig.compile_provider(provider),
        autodiscover=autodiscover.compile_provider(provider),
        mobileconfig=mobileconfig.compile_provider(provider),
    )
