"""``mail-autoconf dns``: one domain's records or the whole folder's, printed or
checked against DNS (docs/cli.md#dns). :func:`dns_main` returns the exit code."""

from __future__ import annotations

from collections.abc import Sequence

import click

from autoconf.address import InvalidDomain
from autoconf.dns_check import Checker, Tally, Verdict
from autoconf.exits import Exit
from autoconf.model import Provider, normalize_domain_pattern
from autoconf.ownership import FolderResult
from autoconf.render import dns as dns_records
from autoconf.settings import Settings
from autoconf.snapshot import Snapshot


def dns_main(
    settings: Settings,
    result: FolderResult,
    snapshot: Snapshot[None],
    domain: str | None,
    *,
    by_provider: bool,
    check: bool,
    timeout: float,
) -> int:
    """Without ``domain``, every domain the folder serves; ``check`` asks DNS."""
    if domain is not None and by_provider:
        click.echo("--by-provider lists the whole folder: give no DOMAIN", err=True)
        return Exit.USAGE
    if domain is None and not result.providers:
        click.echo(f"{settings.domains}: no domain file serves a domain", err=True)
        return Exit.INVALID
    if not check:
        if domain is None:
            return _print_folder(settings, result.providers, by_provider)
        return _one_domain(settings, result, snapshot, domain, None)
    with Checker(settings.resolver, timeout, settings.public_host) as checker:
        if domain is None:
            return _check_folder(checker, result.providers, by_provider)
        return _one_domain(settings, result, snapshot, domain, checker)


def _one_domain(
    settings: Settings,
    result: FolderResult,
    snapshot: Snapshot[None],
    domain: str,
    checker: Checker | None,
) -> int:
    try:
        pattern = normalize_domain_pattern(domain.strip())
    except InvalidDomain as exc:
        click.echo(f"{domain}: {exc}", err=True)
        return Exit.USAGE
    if pattern.startswith("*"):
        provider = next((p for p in result.providers if pattern in p.domains), None)
        if provider is None:
            click.echo(f"{domain}: no domain file lists this pattern", err=True)
            return Exit.INVALID
        click.echo("\n".join(dns_records.pattern_explanation(pattern, provider)))
        return Exit.OK
    entry = snapshot.lookup(pattern)
    if entry is None:
        click.echo(f"{pattern}: no domain file serves this domain", err=True)
        return Exit.INVALID
    via = ""
    if pattern not in entry.provider.domains:
        how = "the catch-all" if snapshot.catch_all is entry else "a wildcard"
        via = f"; {pattern} is served through {how} of {entry.provider.file}"
    if checker is None:
        lines = dns_records.zone_lines(entry.provider, pattern, settings.public_host)
        if via:
            lines.insert(1, via)
        click.echo("\n".join(lines))
        return Exit.OK
    if via:
        click.echo(via)
    tally = Tally()
    _check_domains(checker, [(pattern, entry.provider)], tally)
    return _report(checker, tally)


def _print_folder(settings: Settings, providers: tuple[Provider, ...], by_provider: bool) -> int:
    count = sum(len(p.concrete_domains) for p in providers)
    click.echo(f"; mail-autoconf dns: the {count} domains of {settings.domains}")
    for line in dns_records.folder_lines(providers, settings.public_host, by_provider=by_provider):
        click.echo(line)
    return Exit.OK


def _check_folder(checker: Checker, providers: tuple[Provider, ...], by_provider: bool) -> int:
    tally = Tally()
    if by_provider:
        ordered = dns_records.by_file(providers)
        for index, provider in enumerate(ordered):
            domains = sorted(provider.concrete_domains)
            click.echo(f"; ==== {provider.file}: provider {provider.id}, {len(domains)} domains")
            pairs = [(domain, provider) for domain in domains]
            if not _check_domains(checker, pairs, tally, more=index < len(ordered) - 1):
                break
            for pattern in sorted(provider.patterns):
                click.echo(dns_records.pattern_note(pattern, provider))
    elif _check_domains(checker, dns_records.served(providers), tally):
        for pattern, provider in dns_records.patterns(providers):
            click.echo(dns_records.pattern_note(pattern, provider))
    return _report(checker, tally)


def _check_domains(
    checker: Checker, domains: Sequence[tuple[str, Provider]], tally: Tally, *, more: bool = False
) -> bool:
    """Print each domain's outcomes; False when DNS has answered nothing at all yet
    after a whole domain (no server, or none that answers) and domains remain (here,
    or ``more`` after these): they would only wait for their timeouts."""
    for index, (domain, provider) in enumerate(domains):
        outcomes = checker.check(provider, domain)
        for outcome in outcomes:
            click.echo(outcome.line())
        tally.add(outcomes)
        if checker.answered == 0 and (more or index < len(domains) - 1):
            click.echo(
                f"mail-autoconf dns: DNS ({checker.resolver}) answered no lookup "
                f"for {domain}: stopped there",
                err=True,
            )
            return False
    return True


def _report(checker: Checker, tally: Tally) -> int:
    click.echo(tally.summary())
    unknown = tally.count(Verdict.FAILED)
    if unknown:
        click.echo(
            f"mail-autoconf dns: DNS ({checker.resolver}) gave no answer for {unknown} "
            f"records within {checker.timeout:g} s: whether they are published is unknown",
            err=True,
        )
    return tally.exit_code()
