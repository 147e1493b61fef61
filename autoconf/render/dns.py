"""DNS records for a mail domain, as zone-file lines (docs/cli.md#dns).

RFC 6186 SRV records (with RFC 8314's ``_submissions`` and the implicit-TLS
names) for the services the provider has, Outlook's ``_autodiscover._tcp`` SRV,
and the ``autoconfig``/``autodiscover`` names that must reach this service.
"""

from __future__ import annotations

from dataclasses import dataclass

from autoconf.model import Provider, Security, Server, ServerType
from autoconf.placeholders import EMAILDOMAIN, fill

TTL = 3600
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
    data: str

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


def service_records(domain: str, public_host: str) -> list[Record]:
    """Where Thunderbird and Outlook find this service for ``domain``."""
    target = public_host.rstrip(".")
    records = [Record(f"_autodiscover._tcp.{domain}.", "SRV", f"0 0 443 {target}.")]
    for name in (f"autoconfig.{domain}", f"autodiscover.{domain}"):
        if name != target:  # a name cannot be a CNAME to itself
            records.append(Record(f"{name}.", "CNAME", f"{target}."))
    return records


def zone_lines(provider: Provider, domain: str, public_host: str | None) -> list[str]:
    lines = [
        f"; mail-autoconf dns {domain}: provider {provider.id} ({provider.file})",
        "; RFC 6186 and RFC 8314: where mail clients find the servers",
        *(r.line() for r in srv_records(provider, domain)),
    ]
    if public_host:
        lines += [
            "; Outlook's SRV lookup, and the names Thunderbird and Outlook ask",
            *(r.line() for r in service_records(domain, public_host)),
        ]
    else:
        lines.append(
            "; give --public-host (or AUTOCONF_PUBLIC_HOST) for the autoconfig, "
            "autodiscover and _autodiscover._tcp records"
        )
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
