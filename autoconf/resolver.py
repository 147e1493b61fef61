"""DNS lookups, bounded in time and size (dnspython).

The service asks DNS in two places: the certificate-permission endpoint
(``/tls/allowed``: does a wildcard or catch-all domain's MX or CNAME point at
the provider?) and ``mail-autoconf dns --check``. Both go through
:func:`lookup`: one name and type, at most ``timeout`` seconds in all, at most
:data:`MAX_RECORDS` records, the answers as text. Which server is asked is
the ``resolver`` setting (``AUTOCONF_RESOLVER``: ``IP`` or ``IP:PORT``), else
the system's ``/etc/resolv.conf``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

MAX_RECORDS = 64
DEFAULT_TIMEOUT = 2.0


class LookupFailed(Exception):
    """DNS gave no answer either way (a timeout, SERVFAIL, no server): unknown, not absent."""


@dataclass(frozen=True, slots=True)
class Nameserver:
    """A DNS server to ask: an IP address and a port."""

    address: str
    port: int = 53

    @classmethod
    def parse(cls, text: str) -> Nameserver:
        """``IP``, ``IP:PORT`` or ``[IPv6]:PORT``; ValueError saying what it must be."""
        what = "an IP address, or IP:PORT"
        host, port = text.strip(), "53"
        if host.startswith("["):
            host, _, rest = host[1:].partition("]")
            port = rest.removeprefix(":") or "53"
        elif host.count(":") == 1:
            host, port = host.split(":")
        try:
            ipaddress.ip_address(host)
            number = int(port)
        except ValueError:
            raise ValueError(what) from None
        if not 1 <= number <= 65535:
            raise ValueError(what)
        return cls(host, number)

    def __str__(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"


def lookup(
    name: str,
    rdtype: str,
    nameserver: Nameserver | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> tuple[str, ...]:
    """The records of ``name`` of type ``rdtype`` (``"MX"``, ``"SRV"``…) as text, in
    the order given; () when the name or the type does not exist; LookupFailed
    when DNS cannot tell."""
    import dns.exception
    import dns.resolver

    resolver = dns.resolver.Resolver(configure=nameserver is None)
    if nameserver is not None:
        resolver.nameservers = [nameserver.address]
        resolver.port = nameserver.port
    resolver.lifetime = timeout
    resolver.timeout = timeout
    resolver.cache = None
    try:
        answer = resolver.resolve(name, rdtype, raise_on_no_answer=False, search=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoNameservers) as exc:
        if isinstance(exc, dns.resolver.NXDOMAIN):
            return ()
        raise LookupFailed(f"{name} {rdtype}: no server answered") from None
    except dns.exception.Timeout:
        raise LookupFailed(f"{name} {rdtype}: no answer within {timeout:g} s") from None
    except dns.exception.DNSException as exc:
        raise LookupFailed(f"{name} {rdtype}: {exc}") from None
    records: Sequence[object] = list(answer)[:MAX_RECORDS] if answer.rrset is not None else []
    return tuple(str(record) for record in records)
