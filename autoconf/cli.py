"""The ``mail-autoconf`` command (SPEC §4). ``main(argv) -> int``, named exit codes."""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from enum import IntEnum
from pathlib import Path
from typing import Any

import click

from autoconf import render as renderers
from autoconf.address import InvalidDomain, parse_address
from autoconf.errors import NotFound, RequestError
from autoconf.model import normalize_domain_pattern
from autoconf.ownership import EMPTY, FolderResult
from autoconf.registry import load_folder
from autoconf.render import autoconfig, autodiscover, mobileconfig
from autoconf.render import dns as dns_records
from autoconf.settings import Settings, SettingsError
from autoconf.signing import load_signer
from autoconf.snapshot import build_snapshot
from autoconf.state import StateFolder


class Exit(IntEnum):
    OK = 0
    INVALID = 1  # errors in domain files, a mismatch, an unknown domain
    USAGE = 2


_domains_option = click.option(
    "--domains",
    "domains",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder of domain files [AUTOCONF_DOMAINS, default ./domains].",
)


def _settings(**overrides: Any) -> Settings:
    """The environment's settings, with the options given on the command line."""
    return replace(Settings.from_env(), **{k: v for k, v in overrides.items() if v is not None})


def _load(settings: Settings) -> FolderResult:
    """The folder as the service would resolve it now: with what its state folder
    remembers (read, never written) when this user may read it."""
    limits = settings.limits()
    stored = StateFolder(settings.state_folder, read_only=True).load(limits)
    return load_folder(
        settings.domains,
        stored.as_previous() if stored is not None else EMPTY,
        limits=limits,
        grace=settings.grace_seconds,
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mail-autoconf")
def cli() -> None:
    """Mail client autoconfiguration from one YAML file per provider."""


@cli.command()
@_domains_option
@click.option("--bind", default="127.0.0.1:8080", show_default=True, help="HOST:PORT to listen on.")
@click.option("--workers", type=click.IntRange(1, 256), default=2, show_default=True)
@click.option("--public-host", default=None, help="Host name for URLs handed out.")
@click.option(
    "--proxy-hops",
    type=click.IntRange(0, 10),
    default=None,
    help="Reverse proxies to trust for X-Forwarded-* [AUTOCONF_PROXY_HOPS].",
)
def serve(
    domains: Path | None, bind: str, workers: int, public_host: str | None, proxy_hops: int | None
) -> int:
    """Run the service under gunicorn."""
    from autoconf.server import run  # gunicorn is only needed here

    settings = _settings(domains=domains, public_host=public_host, proxy_hops=proxy_hops)
    settings.check()
    load_signer(settings)  # refuse to start, with the file and the reason
    # Workers read the settings from the environment, as under plain gunicorn.
    os.environ["AUTOCONF_DOMAINS"] = str(settings.domains)
    if settings.public_host:
        os.environ["AUTOCONF_PUBLIC_HOST"] = settings.public_host
    os.environ["AUTOCONF_PROXY_HOPS"] = str(settings.proxy_hops)
    return run(bind=bind, workers=workers)


@cli.command()
@click.argument("folder", required=False, type=click.Path(path_type=Path))
@click.option("--strict", is_flag=True, help="Exit 1 on warnings too.")
def check(folder: Path | None, strict: bool) -> int:
    """Validate and lint every domain file: FILE:LINE: key.path: message."""
    settings = Settings.from_env()
    folder = folder or settings.domains
    if not folder.is_dir():
        click.echo(f"{folder}: not a folder", err=True)
        return Exit.USAGE
    if folder.resolve() != settings.domains.resolve():
        settings = replace(settings, domains=folder, state=None)
    result = _load(settings)
    for problem in result.problems:
        click.echo(str(problem))
    for contest in result.contests:
        served = f"served by {contest.owner}" if contest.owner else "served by none of them"
        click.echo(f"{contest.domain}: claimed by {', '.join(contest.claimants)}; {served}")
    for held in result.held:
        click.echo(f"{held.file}: missing; its last version serves until its grace ends")
    try:
        load_signer(settings)
        signing_ok = True
    except SettingsError as exc:
        click.echo(f"signing: {exc}")
        signing_ok = False
    domains = result.domain_count
    contested = f", {len(result.contests)} contested" if result.contests else ""
    click.echo(
        f"{result.files} files, {len(result.providers)} providers, {domains} domains{contested}: "
        f"{len(result.errors)} errors, {len(result.warnings)} warnings"
    )
    if result.errors or not signing_ok or (strict and result.warnings):
        return Exit.INVALID
    return Exit.OK


@cli.command(name="render")
@click.argument("address")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["autoconfig", "autodiscover", "mobileconfig", "json"]),
    default="autoconfig",
    show_default=True,
)
@_domains_option
@click.option("--public-host", default=None, help="Host in the json answer's URL.")
def render_command(address: str, fmt: str, domains: Path | None, public_host: str | None) -> int:
    """Print exactly what the service would answer for ADDRESS."""
    settings = _settings(domains=domains, public_host=public_host)
    settings.check()
    signer = load_signer(settings) if fmt == "mobileconfig" else None
    snapshot = build_snapshot(_load(settings), renderers.Compiler())
    try:
        parsed = parse_address(address)
        entry = snapshot.lookup(parsed.domain)
        if entry is None:
            raise NotFound(f"{parsed.domain}: no domain file serves this domain")
        if fmt == "autoconfig":
            body = autoconfig.render(entry.compiled.autoconfig, parsed, parsed.domain)
        elif fmt == "autodiscover":
            schema = autodiscover.NS_OUTLOOK_RESPONSE
            body = autodiscover.render(entry.compiled.autodiscover, parsed, schema)
        elif fmt == "mobileconfig":
            body = mobileconfig.render(entry.compiled.mobileconfig, parsed)
            body = signer.sign(body) if signer is not None else body
        else:
            host = settings.public_host or f"autodiscover.{parsed.domain}"
            body = autodiscover.render_json("AutodiscoverV1", entry.provider, host)
    except RequestError as exc:  # what the service answers with a 4xx
        click.echo(f"{address}: {exc.reason}", err=True)
        return Exit.INVALID
    sys.stdout.buffer.write(body)
    sys.stdout.buffer.flush()
    return Exit.OK


@cli.command()
@click.argument("domain")
@_domains_option
@click.option(
    "--public-host", default=None, help="This service's host name [AUTOCONF_PUBLIC_HOST]."
)
def dns(domain: str, domains: Path | None, public_host: str | None) -> int:
    """Print DOMAIN's DNS records as zone-file lines."""
    settings = _settings(domains=domains, public_host=public_host)
    settings.check()
    text = domain.strip()
    try:
        pattern = normalize_domain_pattern(text)
    except InvalidDomain as exc:
        click.echo(f"{domain}: {exc}", err=True)
        return Exit.USAGE
    result = _load(settings)
    if pattern.startswith("*"):
        provider = next((p for p in result.providers if pattern in p.domains), None)
        if provider is None:
            click.echo(f"{domain}: no domain file lists this pattern", err=True)
            return Exit.INVALID
        click.echo("\n".join(dns_records.pattern_explanation(pattern, provider)))
        return Exit.OK
    snapshot = build_snapshot(result, lambda provider: None)
    entry = snapshot.lookup(pattern)
    if entry is None:
        click.echo(f"{pattern}: no domain file serves this domain", err=True)
        return Exit.INVALID
    lines = dns_records.zone_lines(entry.provider, pattern, settings.public_host)
    if pattern not in entry.provider.domains:
        via = "the catch-all" if snapshot.catch_all is entry else "a wildcard"
        lines.insert(1, f"; {pattern} is served through {via} of {entry.provider.file}")
    click.echo("\n".join(lines))
    return Exit.OK


@cli.command(name="import")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("."),
    show_default=True,
    help="Folder for the domain files written.",
)
@click.option("--force", is_flag=True, help="Overwrite domain files that exist.")
def import_command(source: Path, out: Path, force: bool) -> int:
    """Turn Thunderbird ISPDB XML (a file, or a folder of them) into domain YAML."""
    from autoconf import ispdb

    return ispdb.import_main(source, out, force=force)


@cli.command()
@click.argument("domain")
@_domains_option
@click.option(
    "--ca-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Trust this CA (PEM) too, for servers with a private CA.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(0.1, 120),
    default=10.0,
    show_default=True,
    help="Seconds for each server.",
)
def probe(domain: str, domains: Path | None, ca_file: Path | None, timeout: float) -> int:
    """Connect to every server DOMAIN's file names and check what it promises."""
    from autoconf import probe as probing

    settings = _settings(domains=domains)
    settings.check()
    try:
        target = normalize_domain_pattern(domain)
    except InvalidDomain as exc:
        click.echo(f"{domain}: {exc}", err=True)
        return Exit.USAGE
    entry = build_snapshot(_load(settings), lambda p: None).lookup(target)
    if entry is None:
        click.echo(f"{target}: no domain file serves this domain", err=True)
        return Exit.INVALID
    return probing.probe_main(entry.provider, target, ca_file=ca_file, timeout=timeout)


def main(argv: list[str] | None = None) -> int:
    try:
        result = cli.main(args=argv, prog_name="mail-autoconf", standalone_mode=False)
    except click.exceptions.Exit as exc:  # --help, --version
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.Abort:
        click.echo("aborted", err=True)
        return Exit.INVALID
    except SettingsError as exc:
        click.echo(f"mail-autoconf: {exc}", err=True)
        return Exit.USAGE
    return int(result) if isinstance(result, int) else Exit.OK
