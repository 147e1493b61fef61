"""Which certificates name which hosts: ``mail-autoconf certificates`` (docs/cli.md).

Every served domain D gives two names a client connects to over TLS,
``autoconfig.D`` and ``autodiscover.D``; the public host (``AUTOCONF_PUBLIC_HOST``)
is one more. Let's Encrypt allows 100 names a certificate, so thousands of
domains need many certificates, and which certificate holds a name must not
move when the folder changes: a certificate whose names change is issued anew.

The assignment is a binary trie over the SHA-256 of each domain (its A-label):
all domains start in one shard (``mail-autoconf-root``); a shard with more
than :data:`MAX_DOMAINS` domains splits in two by the next bit of the hash,
``mail-autoconf-0`` and ``mail-autoconf-1``, and so on down. A shard is a
function of the set of domains alone (the order of files, the process, Python's
``hash()`` play no part), and a domain added or removed changes the one shard
it falls in, or splits that shard in two (or joins two halves) when it crosses
the bound. A domain's two names always share a certificate. The public host
has a certificate of its own (``mail-autoconf-public``), which no change of the
folder touches.

Splitting in two rather than by a hex digit in sixteen keeps shards fuller (a
split shard's halves hold about half its names each, not a sixteenth), so
there are about half as many certificates to issue and renew, and a split
re-issues two certificates instead of sixteen.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import click

from autoconf.address import InvalidDomain, public_host_name
from autoconf.exits import Exit
from autoconf.ownership import FolderResult
from autoconf.settings import Settings

MAX_NAMES = 100  # Let's Encrypt's bound on the names of one certificate
NAME_PREFIXES = ("autoconfig.", "autodiscover.")
MAX_DOMAINS = MAX_NAMES // len(NAME_PREFIXES)  # a domain's names stay together
MAX_NAME_LENGTH = 253  # a DNS name, without the trailing dot
CERT_PREFIX = "mail-autoconf-"
ROOT = "root"
PUBLIC = f"{CERT_PREFIX}public"
HASH_BITS = 256
# Where certbot keeps each certificate (``live/NAME/fullchain.pem``), and the
# snippet each generated HTTPS server includes: the paths of deploy/nginx/.
LIVE = "/etc/letsencrypt/live"
HTTPS_SNIPPET = "/etc/nginx/snippets/mail-autoconf-https.conf"
DEPLOY_HOOK = "systemctl reload nginx"


@dataclass(frozen=True, slots=True)
class Certificate:
    """One certificate: certbot's name for it and the host names it holds."""

    name: str
    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Plan:
    """The certificates of a folder, and what they leave out."""

    public: Certificate | None
    shards: tuple[Certificate, ...]
    too_long: tuple[str, ...] = ()  # names over 253 characters: no certificate can hold them
    public_in_shard: str | None = None  # the domain whose name the public host is

    @property
    def certificates(self) -> tuple[Certificate, ...]:
        return ((self.public,) if self.public else ()) + self.shards

    @property
    def names(self) -> int:
        return sum(len(c.names) for c in self.certificates)


def domain_key(domain: str) -> int:
    """The domain's place in the trie: its SHA-256 as a 256-bit number (stable across
    processes and machines, unlike ``hash()``)."""
    return int.from_bytes(hashlib.sha256(domain.encode("ascii")).digest(), "big")


def shard_name(bits: str) -> str:
    """``mail-autoconf-root`` for the unsplit shard, else the hash bits that lead to it."""
    return CERT_PREFIX + (bits or ROOT)


def plan(domains: Iterable[str], public_host: str | None = None) -> Plan:
    """The certificates for these domains (normalised A-labels, no patterns) and the
    public host (an A-label, or None)."""
    keyed = sorted((domain_key(d), d) for d in set(domains))
    keys = [key for key, _ in keyed]
    shards = []
    too_long: list[str] = []
    public_in_shard = None
    for bits, lo, hi in _leaves(keys, 0, len(keys), 0, ""):
        names = []
        for domain in sorted(domain for _, domain in keyed[lo:hi]):
            for prefix in NAME_PREFIXES:
                name = prefix + domain
                if len(name) > MAX_NAME_LENGTH:
                    too_long.append(name)
                elif name == public_host:
                    public_in_shard = domain  # the public certificate holds it
                else:
                    names.append(name)
        if names:
            shards.append(Certificate(shard_name(bits), tuple(names)))
    public = Certificate(PUBLIC, (public_host,)) if public_host else None
    return Plan(public, tuple(shards), tuple(too_long), public_in_shard)


def _leaves(
    keys: Sequence[int], lo: int, hi: int, depth: int, bits: str
) -> Iterator[tuple[str, int, int]]:
    """The shards of ``keys[lo:hi]`` (sorted; all starting with ``bits``), as
    ``(bits, lo, hi)``, in hash order; empty halves have no shard."""
    if hi - lo <= MAX_DOMAINS or depth == HASH_BITS:  # 256 bits apart: never, short of a collision
        if hi > lo:
            yield bits, lo, hi
        return
    base = int(bits, 2) << (HASH_BITS - depth) if bits else 0
    middle = bisect_left(keys, base | 1 << (HASH_BITS - depth - 1), lo, hi)
    yield from _leaves(keys, lo, middle, depth + 1, bits + "0")
    yield from _leaves(keys, middle, hi, depth + 1, bits + "1")


# ---------------------------------------------------------------------------
# The three outputs


def certbot_lines(certificates: Iterable[Certificate]) -> Iterator[str]:
    """One ``certbot certonly`` command a certificate, runnable as they stand (``| sh``):
    non-interactive (a certificate whose names did not change and is not due is kept;
    one whose names changed is issued anew under its name), nginx reloaded after each
    issue and renewal."""
    for certificate in certificates:
        names = " ".join(f"-d {name}" for name in certificate.names)
        yield (
            f"certbot certonly --nginx --cert-name {certificate.name} --non-interactive "
            f"--deploy-hook '{DEPLOY_HOOK}' {names}"
        )


def list_lines(certificates: Iterable[Certificate]) -> Iterator[str]:
    """``NAME name name ...``, one line a certificate."""
    for certificate in certificates:
        yield " ".join((certificate.name, *certificate.names))


def nginx_servers(shards: Sequence[Certificate]) -> Iterator[str]:
    """The include file of deploy/nginx/mail-autoconf.conf: one HTTPS server a shard,
    its names, its certificate, and the shared snippet. nginx chooses the server,
    and so the certificate, by the name the client sends (SNI) among the exact
    ``server_name`` lists. (The public host's server is in the site itself.)"""
    yield "# /etc/nginx/mail-autoconf/certificates.conf, made by"
    yield "#   mail-autoconf certificates --format nginx"
    yield "# One HTTPS server a certificate; nginx picks each by the name the client asks"
    yield "# for (SNI). Made again after the certbot commands have run; never edited."
    yield f"# {len(shards)} certificates, {sum(len(s.names) for s in shards)} names."
    for shard in shards:
        yield ""
        yield "server {"
        yield "    server_name"
        for first in range(0, len(shard.names), len(NAME_PREFIXES)):
            yield "        " + " ".join(shard.names[first : first + len(NAME_PREFIXES)])
        yield "        ;"
        yield f"    ssl_certificate {LIVE}/{shard.name}/fullchain.pem;"
        yield f"    ssl_certificate_key {LIVE}/{shard.name}/privkey.pem;"
        yield f"    include {HTTPS_SNIPPET};"
        yield "}"


# ---------------------------------------------------------------------------
# What the command says on stderr

DOCS = 'docs/deploy.md, "Wildcard and catch-all domains"'


def notes(
    result: Plan,
    *,
    domains: int,
    patterns: Sequence[str],
    errors: int,
    public_host: str | None,
) -> list[str]:
    """The lines for stderr: what no certificate here holds, and a count."""
    lines = []
    if errors:
        lines.append(
            f"{errors} errors in the domain files: the domains of broken files are left out "
            "(mail-autoconf check lists them); fix them before asking for certificates"
        )
    if patterns:
        shown = ", ".join(sorted(patterns)[:5]) + (", ..." if len(patterns) > 5 else "")
        lines.append(
            f"{len(patterns)} wildcard and catch-all entries ({shown}) cannot have their "
            f"names listed in a certificate: their clients take the paths that need none of "
            f"theirs, or certificates made on demand ({DOCS})"
        )
    if not public_host:
        lines.append(
            "no public host (--public-host or AUTOCONF_PUBLIC_HOST): the host that Outlook's "
            "SRV records, the autodiscover.json URL and the page's profile link name gets "
            "no certificate"
        )
    if result.public_in_shard and public_host:
        lines.append(
            f"{public_host} is the public host: it is in {PUBLIC}, not in the certificate "
            f"of {result.public_in_shard}"
        )
    if result.too_long:
        lines.append(
            f"{len(result.too_long)} names left out: longer than {MAX_NAME_LENGTH} "
            f"characters, no DNS name and no certificate can be ({result.too_long[0]}, ...)"
        )
    lines.append(
        f"{domains} domains: {result.names} names in {len(result.certificates)} certificates "
        f"(at most {MAX_NAMES} names each)"
    )
    return lines


def certificates_main(settings: Settings, result: FolderResult, fmt: str) -> int:
    """``mail-autoconf certificates``: the plan printed in ``fmt``, notes on stderr."""
    host = None
    if settings.public_host:
        try:
            host = public_host_name(settings.public_host)
        except InvalidDomain as exc:
            click.echo(f"public host: {exc}", err=True)
            return Exit.USAGE
    served = [d for provider in result.providers for d in provider.concrete_domains]
    patterns = [pattern for provider in result.providers for pattern in provider.patterns]
    made = plan(served, host)
    if fmt == "nginx":
        lines = nginx_servers(made.shards)
    elif fmt == "list":
        lines = list_lines(made.certificates)
    else:
        lines = certbot_lines(made.certificates)
    click.echo("\n".join(lines))
    errors = len(result.errors)
    found = notes(made, domains=len(served), patterns=patterns, errors=errors, public_host=host)
    for note in found:
        click.echo(f"mail-autoconf certificates: {note}", err=True)
    return Exit.INVALID if errors else Exit.OK
