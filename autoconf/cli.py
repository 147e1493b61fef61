"""The ``mail-autoconf`` command (docs/cli.md). ``main(argv) -> int``, exit codes
as :class:`autoconf.exits.Exit` names them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from werkzeug.test import Client

from autoconf.address import InvalidDomain, parse_address
from autoconf.errors import Problem, RequestError
from autoconf.exits import Exit, counted
from autoconf.folder import load_file
from autoconf.model import Provider, normalize_domain_pattern
from autoconf.ownership import EMPTY, FolderResult
from autoconf.registry import load_folder
from autoconf.render import autodiscover, pacc
from autoconf.resolver import DEFAULT_TIMEOUT, Nameserver
from autoconf.settings import OPTION, Settings, SettingsError
from autoconf.signing import load_signer
from autoconf.snapshot import Entry, Snapshot, build_snapshot
from autoconf.state import StateFolder

F = TypeVar("F", bound=Callable[..., Any])


def setting_option(name: str, help: str | None = None) -> Callable[[F], F]:
    """The command-line option of a setting: read by the same parser as its
    environment variable, so that bounds and messages are the same."""
    option = OPTION[name]
    assert option.flag is not None

    def read(context: click.Context, parameter: click.Parameter, value: str | None) -> Any:
        return None if value is None else option.read(value, option.flag or name)

    decorator: Callable[[F], F] = click.option(
        option.flag,
        name,
        default=None,
        callback=read,
        help=f"{help or option.help} [{option.variable}]",
    )
    return decorator


def _settings(**given: object) -> Settings:
    """The environment's settings, with the options given on the command line."""
    return Settings.from_env().with_options(**given)


def _load(settings: Settings) -> FolderResult:
    """The folder as the service would resolve it now: with what its state folder
    remembers (read, never written) when this user may read it."""
    limits = settings.limits()
    stored = _state(settings).load(limits)
    return load_folder(
        settings.domains,
        stored.as_previous() if stored is not None else EMPTY,
        limits=limits,
        grace=settings.grace_seconds,
    )


def _state(settings: Settings) -> StateFolder:
    return StateFolder(settings.state_folder, read_only=True)


def _entry(
    settings: Settings, domain: str
) -> tuple[FolderResult, Snapshot[None], Entry[None] | None]:
    """The folder, its snapshot, and the entry that serves ``domain`` (as the service
    looks it up)."""
    result = _load(settings)
    snapshot = build_snapshot(result, lambda provider: None)
    return result, snapshot, snapshot.lookup(domain)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mail-autoconf")
def cli() -> None:
    """Mail client autoconfiguration from one YAML file per provider."""


@cli.command()
@setting_option("domains")
@click.option("--bind", default="127.0.0.1:8080", show_default=True, help="HOST:PORT to listen on.")
@click.option("--workers", type=click.IntRange(1, 256), default=2, show_default=True)
@setting_option("public_host")
@setting_option("proxy_hops")
@click.option("--show-urls", is_flag=True, help="Print URLs to try once the address is free.")
def serve(
    domains: Path | None,
    bind: str,
    workers: int,
    public_host: str | None,
    proxy_hops: int | None,
    show_urls: bool,
) -> int:
    """Run the service under gunicorn."""
    from autoconf.serving import address_in_use, run  # gunicorn is only needed here

    settings = _settings(domains=domains, public_host=public_host, proxy_hops=proxy_hops)
    settings.check()
    load_signer(settings)  # refuse to start, with the file and the reason
    busy = address_in_use(bind)
    if busy:
        click.echo(f"mail-autoconf serve: {busy}", err=True)
        return Exit.USAGE
    if show_urls:
        click.echo(f"Serving {settings.domains} on http://{bind}/ -- try:")
        for example in TRY_URLS:
            click.echo("  " + example.format(bind=bind))
    return run(settings, bind=bind, workers=workers)


TRY_URLS = (
    "curl 'http://{bind}/mail/config-v1.1.xml?emailaddress=alice@example.com'",
    "curl -X POST --data-binary @tests/data/pox-request.xml "
    "http://{bind}/autodiscover/autodiscover.xml",
    "curl 'http://{bind}/autodiscover/autodiscover.json?Email=bob@example.org"
    "&Protocol=AutodiscoverV1'",
)


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--strict", is_flag=True, help="Exit 1 on warnings too.")
@click.option(
    "--online",
    is_flag=True,
    help="Also connect to each per-user lookup's source and run one query (postmaster@DOMAIN).",
)
def check(paths: tuple[Path, ...], strict: bool, online: bool) -> int:
    """Validate and lint every domain file: FILE:LINE: key.path: message.

    PATHS: a domain folder (by default AUTOCONF_DOMAINS), or domain files, such
    as a new one before it is copied in."""
    settings = Settings.from_env()
    targets = paths or (settings.domains,)
    if len(targets) == 1 and targets[0].is_dir():
        if targets[0].resolve() != settings.domains.resolve():
            settings = settings.for_folder(targets[0])
        result = _load(settings)
    else:
        missing = [p for p in targets if not p.is_file()]
        if missing:
            click.echo(f"{missing[0]}: neither a domain file nor a folder of them", err=True)
            return Exit.USAGE
        result = _load_files(targets)
    for problem in result.problems:
        click.echo(str(problem))
    for provider in result.providers:  # what PACC cannot carry: said, never counted
        for item in pacc.left_out(provider):
            click.echo(f"{provider.file}: note: PACC leaves out {item.name}: {item.why}")
    for contest in result.contests:
        served = f"served by {contest.owner}" if contest.owner else "served by none of them"
        click.echo(f"{contest.domain}: claimed by {', '.join(contest.claimants)}; {served}")
    for held in result.held:
        click.echo(f"{held.file}: missing; its last version serves until its grace ends")
    failures = [
        counted(len(result.errors), "error"),
        counted(len(result.warnings), "warning"),
    ]
    try:
        load_signer(settings)
        signing_ok = True
    except SettingsError as exc:
        click.echo(f"signing: {exc}")
        signing_ok = False
        failures.append("signing not set up")
    if online:
        from autoconf.lookup.command import check_online

        offline = check_online(result.providers)
        if offline:
            failures.append(counted(offline, "lookup") + " not answering")
    contested = f", {len(result.contests)} contested" if result.contests else ""
    click.echo(
        f"{counted(result.files, 'file')}, {counted(len(result.providers), 'provider')}, "
        f"{counted(result.domain_count, 'domain')}{contested}: {', '.join(failures)}"
    )
    if result.errors or not signing_ok or (strict and result.warnings):
        return Exit.INVALID
    return Exit.INVALID if online and offline else Exit.OK


def _load_files(paths: tuple[Path, ...]) -> FolderResult:
    """Domain files checked one by one, each as its folder's limits allow (whether
    another file of a folder claims their domains shows when the folder is checked)."""
    providers: list[Provider] = []
    problems: list[Problem] = []
    for path in paths:
        provider, found = load_file(path)
        problems += found
        if provider is not None:
            providers.append(provider)
    return FolderResult(tuple(providers), (), tuple(problems), len(paths))


RENDER_FORMATS = ("autoconfig", "autodiscover", "mobileconfig", "json")


def _render_request(fmt: str, address: str) -> tuple[str, str, dict[str, str], bytes | None]:
    """What a client of ``fmt`` asks the service for ``address``: method, path,
    query, body."""
    if fmt == "autodiscover":
        body = autodiscover.request_document(address, autodiscover.NS_OUTLOOK_RESPONSE)
        return "POST", "/autodiscover/autodiscover.xml", {}, body
    if fmt == "mobileconfig":
        return "GET", "/mobileconfig", {"emailaddress": address}, None
    if fmt == "json":
        query = {"Email": address, "Protocol": "AutodiscoverV1"}
        return "GET", "/autodiscover/autodiscover.json", query, None
    return "GET", "/mail/config-v1.1.xml", {"emailaddress": address}, None


@cli.command(name="render")
@click.argument("address")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(RENDER_FORMATS),
    default="autoconfig",
    show_default=True,
)
@setting_option("domains")
@setting_option("public_host", "Host in the json answer's URL.")
def render_command(address: str, fmt: str, domains: Path | None, public_host: str | None) -> int:
    """Print exactly what the service would answer for ADDRESS: the service's own
    request path answers a request made here."""
    from autoconf.app import create_app

    settings = _settings(domains=domains, public_host=public_host, reload_seconds=0)
    settings.check()
    try:
        parsed = parse_address(address)
    except RequestError as exc:  # what the service answers with a 4xx
        click.echo(f"{address}: {exc.reason}", err=True)
        return Exit.INVALID
    app = create_app(settings, state=_state(settings))
    method, path, query, body = _render_request(fmt, parsed.full)
    answer = Client(app.pipeline).open(path, method=method, query_string=query, data=body)
    if answer.status_code != 200 or fmt == "autodiscover" and b"<Error" in answer.data:
        reason = answer.get_data(as_text=True).strip().splitlines()[0] if answer.data else ""
        click.echo(f"{address}: {reason or answer.status}", err=True)
        return Exit.INVALID
    from autoconf.lookup.command import tell_lookup

    tell_lookup(app.service, parsed)
    app.close()
    sys.stdout.buffer.write(answer.data)
    sys.stdout.buffer.flush()
    return Exit.OK


@cli.command()
@click.argument("domain", required=False)
@setting_option("domains")
@setting_option("public_host", "This service's host name.")
@click.option("--by-provider", is_flag=True, help="The whole folder in one block a domain file.")
@click.option("--check", is_flag=True, help="Ask DNS whether the records are published.")
@setting_option("resolver", "The DNS server --check asks (IP or IP:PORT).")
@click.option(
    "--timeout",
    type=click.FloatRange(0.1, 60),
    default=DEFAULT_TIMEOUT,
    show_default=True,
    help="Seconds for each DNS lookup of --check.",
)
def dns(
    domain: str | None,
    domains: Path | None,
    public_host: str | None,
    by_provider: bool,
    check: bool,
    resolver: Nameserver | None,
    timeout: float,
) -> int:
    """Print DOMAIN's DNS records as zone-file lines; without DOMAIN, every domain
    the folder serves. --check asks DNS whether they are published."""
    from autoconf.dns_command import dns_main

    settings = _settings(domains=domains, public_host=public_host, resolver=resolver)
    settings.check()
    result = _load(settings)
    snapshot = build_snapshot(result, lambda provider: None)
    return dns_main(
        settings, result, snapshot, domain, by_provider=by_provider, check=check, timeout=timeout
    )


CERTIFICATE_FORMATS = ("certbot", "list", "nginx")


@cli.command(name="certificates")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(CERTIFICATE_FORMATS),
    default="certbot",
    show_default=True,
    help="certbot commands, NAME and its names a line, or nginx's HTTPS servers.",
)
@setting_option("domains")
@setting_option("public_host", "This service's host name: a certificate of its own.")
def certificates_command(fmt: str, domains: Path | None, public_host: str | None) -> int:
    """Print the certificates that name every autoconfig. and autodiscover. host of the
    folder's domains, and the public host, at most 100 names each."""
    from autoconf.certificates import certificates_main

    settings = _settings(domains=domains, public_host=public_host)
    settings.check()
    return certificates_main(settings, _load(settings), fmt)


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
@setting_option("domains")
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
    _, _, entry = _entry(settings, target)
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
