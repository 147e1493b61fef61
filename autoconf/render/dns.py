"""DNS records for a mail domain, as zone-file lines (docs/cli.md#dns).

RFC 6186 SRV records (with RFC 8314's ``_submissions`` and the implicit-TLS
names) for the services the provider has, RFC 6764's ``_caldavs._tcp`` and
``_carddavs._tcp`` SRV records with their TXT ``path=`` for its calendar and
address book, Outlook's ``_autodiscover._tcp`` SRV, and the
``autoconfig``/``autodiscover`` names that must reach this service.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from autoconf.model import Provider, Security, Server, ServerType
from autoconf.placeholders import EMAILDOMAIN, fill
from autoconf.render import dav, pacc

TTL = 3600
NO_PUBLIC_HOST = (
    "; give --public-host (or AUTOCONF_PUBLIC_HOST) for the autoconfig, "
    "autodiscover and _autodiscover._tcp records"
)
# (type, implicit TLS) -> the RFC 6186 / RFC 8314 service label.
SERVICES = {
    (ServerType.IMAP, True): "_imaps._tcp",
    (ServerType.IMAP, False): "_imap._tcp",
    (ServerType.POP3, True): "_pop3s._tcp",
    (ServerType.POP3, False): "_pop3._tcp",
    (ServerType.SMTP, True): "_submissions._tcp",
    (ServerType.SMTP, False): "_submission._tcp",
}


@dataclass(frozen=True, slots=True)
class Record:
    name: str
    type: str
    data: str  # as a zone file writes it (a TXT record's strings quoted)

    def line(self) -> str:
        return f"{self.name:<34} {TTL} IN {self.type:<5} {self.data}"


def _ranked(servers: tuple[Server, ...]) -> list[Server]:
    """The file's order, except that implicit TLS goes before STARTTLS within a protocol."""
    first_seen: dict[ServerType, int] = {}
    for index, server in enumerate(servers):
        first_seen.setdefault(server.type, index)
    order = {id(server): index for index, server in enumerate(servers)}
    return sorted(
        servers,
        key=lambda s: (first_seen[s.type], s.security is not Security.SSL, order[id(s)]),
    )


def srv_records(provider: Provider, domain: str) -> list[Record]:
    """One SRV a served server; priorities 0, 10, 20… per kind in the order clients should try."""
    records = []
    for servers in (provider.served_incoming, provider.served_outgoing):
        for rank, server in enumerate(_ranked(servers)):
            label = SERVICES[(server.type, server.security is Security.SSL)]
            host = fill(server.host, {EMAILDOMAIN: domain})
            records.append(
                Record(f"{label}.{domain}.", "SRV", f"{rank * 10} 0 {server.port} {host}.")
            )
    return records


# What each DAV service is in the domain file, for the zone's comments.
DAV_KEYS = {dav.CALDAV: "calendar", dav.CARDDAV: "addressbook"}


def dav_records(provider: Provider, domain: str) -> list[Record]:
    """RFC 6764: an SRV record and a TXT ``path=`` for the calendar and the address
    book, each naming the base of its URL (:mod:`autoconf.render.dav`)."""
    targets = dav.compile_provider(provider)
    records = []
    for kind in DAV_KEYS:
        entry = dav.dns_service(targets, kind, domain)
        if entry is not None:
            name = f"{entry.label}.{domain}."
            records.append(Record(name, "SRV", f"0 0 {entry.port} {entry.host}."))
            records.append(Record(name, "TXT", txt_string(f"path={entry.path}")))
    return records


def dav_notes(provider: Provider) -> list[str]:
    """Why a configured calendar or address book has no records: its host names the user."""
    targets = dav.compile_provider(provider)
    return [
        f"; {key}.url names the user in its host: no DNS record can name it"
        for kind, key in DAV_KEYS.items()
        if (target := targets.of(kind)) is not None and target.base is None
    ]


def txt_string(text: str) -> str:
    """One character-string of a TXT record, quoted as zone files write it."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def service_names(domain: str) -> tuple[str, str]:
    """The names Thunderbird and Outlook ask for ``domain``, which must reach this service."""
    return f"autoconfig.{domain}", f"autodiscover.{domain}"


def service_records(domain: str, public_host: str) -> list[Record]:
    """Where Thunderbird and Outlook find this service for ``domain``."""
    target = public_host.rstrip(".")
    records = [Record(f"_autodiscover._tcp.{domain}.", "SRV", f"0 0 443 {target}.")]
    for name in service_names(domain):
        if name != target:  # a name cannot be a CNAME to itself
            records.append(Record(f"{name}.", "CNAME", f"{target}."))
    return records


def pacc_records(provider: Provider, domain: str, public_host: str | None) -> list[Record]:
    """PACC's TXT record, the digest of the very bytes the service answers for
    ``domain``; and ``ua-auto-config.D`` where the public host is known. None when
    the provider has nothing PACC can carry."""
    body = pacc.render(provider, domain)
    if body is None:
        return []
    records = [Record(f"{pacc.TXT_PREFIX}{domain}.", "TXT", txt_string(pacc.digest(body)))]
    target = public_host.rstrip(".") if public_host else None
    name = f"{pacc.HOST_PREFIX}{domain}"
    if target and name != target:
        records.append(Record(f"{name}.", "CNAME", f"{target}."))
    return records


def domain_records(provider: Provider, domain: str, public_host: str | None) -> list[Record]:
    """Every record ``dns`` prints for ``domain``: the service's only with a public host."""
    records = srv_records(provider, domain) + dav_records(provider, domain)
    if public_host:
        records += service_records(domain, public_host)
    return records + pacc_records(provider, domain, public_host)


def zone_lines(provider: Provider, domain: str, public_host: str | None) -> list[str]:
    lines = [
        f"; mail-autoconf dns {domain}: provider {provider.id} ({provider.file})",
        "; RFC 6186 and RFC 8314: where mail clients find the servers",
        *(r.line() for r in srv_records(provider, domain)),
    ]
    dav_lines = [r.line() for r in dav_records(provider, domain)] + dav_notes(provider)
    if dav_lines:
        lines += ["; RFC 6764: where CalDAV and CardDAV clients find calendars and contacts"]
        lines += dav_lines
    if public_host:
        lines += [
            "; Outlook's SRV lookup, and the names Thunderbird and Outlook ask",
            *(r.line() for r in service_records(domain, public_host)),
        ]
    else:
        lines.append(NO_PUBLIC_HOST)
    found = pacc_records(provider, domain, public_host)
    if found:
        lines.append(f"; PACC ({pacc.DRAFT}): the digest of the document the service answers")
        lines += [r.line() for r in found]
    return lines


def pattern_explanation(pattern: str, provider: Provider) -> list[str]:
    """Why a wildcard or catch-all gets no records: DNS has no per-pattern SRV."""
    what = "every domain no other file claims" if pattern == "*" else f"every {pattern} domain"
    return [
        f"; {provider.file} serves {what}.",
        "; DNS records cannot be written for a pattern: SRV names such as",
        "; _imaps._tcp.<domain> are looked up per domain, and wildcard DNS does not",
        "; reach below an underscore label. Run `mail-autoconf dns DOMAIN` for each",
        "; concrete domain you host to print its records.",
    ]


def pattern_note(pattern: str, provider: Provider) -> str:
    """One line for a pattern in the whole folder's listing."""
    what = "the catch-all" if pattern == "*" else f"the wildcard {pattern}"
    return (
        f"; {provider.file} serves {what}: its domains cannot be listed; "
        "run `mail-autoconf dns DOMAIN` for each one you host"
    )


def served(providers: Iterable[Provider]) -> list[tuple[str, Provider]]:
    """Every exact domain served and its provider, in name order."""
    return sorted(
        ((domain, provider) for provider in providers for domain in provider.concrete_domains),
        key=lambda pair: pair[0],
    )


def patterns(providers: Iterable[Provider]) -> list[tuple[str, Provider]]:
    """Every wildcard and catch-all served and its provider, in order."""
    return sorted(
        ((pattern, provider) for provider in providers for pattern in provider.patterns),
        key=lambda pair: pair[0],
    )


def by_file(providers: Iterable[Provider]) -> list[Provider]:
    return sorted(providers, key=lambda provider: provider.file)


def folder_lines(
    providers: Iterable[Provider], public_host: str | None, *, by_provider: bool
) -> Iterator[str]:
    """The whole folder's records, one block a domain (in name order), or one block a
    provider (in file order) with its domains in name order; then the patterns."""
    if not public_host:
        yield NO_PUBLIC_HOST
    providers = by_file(providers)
    if by_provider:
        for provider in providers:
            domains = sorted(provider.concrete_domains)
            yield ""
            yield f"; ==== {provider.file}: provider {provider.id}, {len(domains)} domains"
            for domain in domains:
                yield f"; {domain}"
                yield from (r.line() for r in domain_records(provider, domain, public_host))
            yield from (pattern_note(p, provider) for p in sorted(provider.patterns))
        return
    for domain, provider in served(providers):
        yield ""
        yield f"; {domain}: provider {provider.id} ({provider.file})"
        yield from (r.line() for r in domain_records(provider, domain, public_host))
    notes = patterns(providers)
    if notes:
        yield ""
    yield from (pattern_note(pattern, provider) for pattern, provider in notes)
