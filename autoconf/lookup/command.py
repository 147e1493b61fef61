"""The command line's side of the per-user lookups: ``check --online`` asks each
source once; ``render`` tells on stderr what the lookup found for its address."""

from __future__ import annotations

import click

from autoconf.address import Address, parse_address
from autoconf.lookup.runtime import try_lookup
from autoconf.model import Provider
from autoconf.pipeline import Service


def check_online(providers: tuple[Provider, ...]) -> int:
    """``check --online``: each provider's lookup asked once for postmaster@ its first
    domain; a line each; how many did not answer."""
    failed = 0
    for provider in providers:
        if provider.lookup is None:
            continue
        domain = next((d for d in provider.concrete_domains), "example.org")
        trial = try_lookup(provider.lookup, provider.file, parse_address(f"postmaster@{domain}"))
        where = f"{provider.file}: lookup ({provider.lookup.kind})"
        if trial.failure:
            failed += 1
            click.echo(f"{where}: error: {trial.failure}")
        else:
            outcome = "found" if trial.found else "not found (the default is answered)"
            click.echo(
                f"{where}: answered in {trial.seconds * 1000:.0f} ms: postmaster@{domain} {outcome}"
            )
    return failed


def tell_lookup(service: Service, address: Address) -> None:
    """On stderr, what the provider's per-user lookup found for the address (the
    answer on stdout has it filled in already)."""
    entry = service.registry.snapshot.lookup(address.domain)
    lookup = entry.provider.lookup if entry is not None else None
    if entry is None or lookup is None:
        return
    found = service.lookups.find(lookup, entry.provider.file, address)  # cached by the answer
    failing = service.lookups.failing()
    if failing:
        click.echo(
            f"lookup ({lookup.kind}): failed: {failing[0].reason}; the default is answered",
            err=True,
        )
    elif found is None:
        click.echo(f"lookup ({lookup.kind}): not found; the default is answered", err=True)
    else:
        given = [
            f"{k}={v}"
            for k in ("login", "incoming_host", "outgoing_host")
            if (v := getattr(found, k))
        ]
        click.echo(f"lookup ({lookup.kind}): found: {', '.join(given)}", err=True)
