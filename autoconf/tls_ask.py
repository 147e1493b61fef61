"""Which names may get a certificate on demand: the answer of ``GET /tls/allowed``.

A TLS front that issues certificates when a name is first asked for (Caddy's
``on_demand_tls { ask … }``) asks first whether the name is one of ours, so
that nobody can make it request certificates for arbitrary names (Let's
Encrypt allows 50 certificates per registered domain a week). The names that
may have one (docs/deploy.md, "Caddy, for many domains"):

- the public host (``AUTOCONF_PUBLIC_HOST``);
- ``autoconfig.D`` and ``autodiscover.D`` of every domain D a file lists by
  name: a lookup in the snapshot, nothing else;
- the same names of a domain served only by a wildcard or the catch-all, once
  DNS shows that the domain's MX, or the name's CNAME, points at the provider:
  at one of its servers' hosts, at one of its ``mx_domains``, at the public host,
  or at a name of the same registered domain as one of those. (Hosts written
  with a placeholder, such as ``mail.%EMAILDOMAIN%``, do not count: they would
  point at every domain.)

A DNS check is bounded (:mod:`autoconf.resolver`: a timeout a lookup, at most
two lookups a name), its verdict kept for a while (an hour when allowed, five
minutes when refused, a minute when DNS did not answer), and the checks not
answered from that memory are rationed (:data:`CHECKS_BURST`, then
:data:`CHECKS_PER_SECOND`): a flood of made-up names costs the service no more
than that, and the rest are refused with 429 until the ration refills.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from autoconf.address import InvalidDomain, normalize_domain, public_host_name
from autoconf.model import Provider, registered_domain
from autoconf.placeholders import PLACEHOLDER_LIKE
from autoconf.resolver import LookupFailed
from autoconf.snapshot import Snapshot

log = logging.getLogger("autoconf")

# The names a front asks for, of a customer domain D.
PREFIXES = ("autoconfig.", "autodiscover.")
ALLOWED_SECONDS = 3600.0
REFUSED_SECONDS = 300.0
UNKNOWN_SECONDS = 60.0
MAX_REMEMBERED = 10_000
CHECKS_BURST = 20
CHECKS_PER_SECOND = 1.0

# (name, type) -> the records as text; () for none; LookupFailed when DNS cannot tell.
Lookup = Callable[[str, str], tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class Verdict:
    status: int  # 200 allowed, 403 refused, 429 refused for now (too many checks)
    reason: str

    @property
    def allowed(self) -> bool:
        return self.status == 200


class TlsPermission:
    """The verdicts of one process: the snapshot decides, DNS where it must."""

    def __init__(self, lookup: Lookup, clock: Callable[[], float] = time.monotonic) -> None:
        self._lookup = lookup
        self._clock = clock
        self._lock = threading.Lock()
        self._remembered: OrderedDict[str, tuple[float, Verdict]] = OrderedDict()
        self._tokens = float(CHECKS_BURST)
        self._filled_at = clock()

    def verdict(self, raw_name: str, snapshot: Snapshot[Any], public_host: str | None) -> Verdict:
        """May ``raw_name`` have a certificate? InvalidDomain for a name that is none."""
        name = normalize_domain(raw_name)
        if public_host and name == _host_only(public_host):
            return Verdict(200, f"{name} is the public host")
        prefix = next((p for p in PREFIXES if name.startswith(p)), None)
        if prefix is None:
            return Verdict(403, f"{name} is not an autoconfig. or autodiscover. name")
        domain = name[len(prefix) :]
        entry = snapshot.exact.get(domain)
        if entry is not None:
            return Verdict(200, f"{domain} is listed in {entry.provider.file}")
        entry = snapshot.lookup(domain) if "." in domain else None
        if entry is None:
            return Verdict(403, f"no domain file serves {domain}")
        return self._checked(name, domain, entry.provider, public_host)

    def _checked(
        self, name: str, domain: str, provider: Provider, public_host: str | None
    ) -> Verdict:
        now = self._clock()
        with self._lock:
            kept = self._remembered.get(name)
            if kept is not None and kept[0] > now:
                self._remembered.move_to_end(name)
                return kept[1]
            if not self._take_token(now):
                return Verdict(429, "too many DNS checks at once; ask again later")
        verdict, keep = self._dns_verdict(name, domain, provider, public_host)
        log.info(
            "tls: %s %s: %s", name, "allowed" if verdict.allowed else "refused", verdict.reason
        )
        with self._lock:
            self._remembered[name] = (now + keep, verdict)
            self._remembered.move_to_end(name)
            while len(self._remembered) > MAX_REMEMBERED:
                self._remembered.popitem(last=False)
        return verdict

    def _take_token(self, now: float) -> bool:
        elapsed = max(0.0, now - self._filled_at)
        self._tokens = min(float(CHECKS_BURST), self._tokens + elapsed * CHECKS_PER_SECOND)
        self._filled_at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True

    def _dns_verdict(
        self, name: str, domain: str, provider: Provider, public_host: str | None
    ) -> tuple[Verdict, float]:
        ours = provider_names(provider, public_host)
        try:
            exchangers = [_mx_host(record) for record in self._lookup(domain, "MX")]
            for host in exchangers:
                if _points_at(host, ours):
                    return Verdict(200, f"the MX of {domain} is {host}"), ALLOWED_SECONDS
            aliases = [_strip_dot(r) for r in self._lookup(name, "CNAME")]
            for target in aliases:
                if _points_at(target, ours):
                    return Verdict(200, f"{name} is a CNAME of {target}"), ALLOWED_SECONDS
        except LookupFailed as exc:
            return Verdict(403, f"DNS did not tell: {exc}"), UNKNOWN_SECONDS
        found = ", ".join([*(f"MX {h}" for h in exchangers), *(f"CNAME {t}" for t in aliases)])
        why = (
            f"{domain} is served only by a wildcard or the catch-all, and neither its MX "
            f"nor {name}'s CNAME points at the provider ({found or 'none in DNS'})"
        )
        return Verdict(403, why), REFUSED_SECONDS


def provider_names(provider: Provider, public_host: str | None) -> tuple[set[str], set[str]]:
    """(the host names that are the provider's, their registered domains)."""
    hosts = {
        server.host
        for server in (*provider.incoming, *provider.outgoing)
        if not PLACEHOLDER_LIKE.search(server.host)
    }
    hosts.update(provider.mx_domains)  # the MX hosts it says it answers for
    if public_host:
        hosts.add(_host_only(public_host))
    return hosts, set(_registered_domains(hosts))


def _points_at(host: str, ours: tuple[set[str], set[str]]) -> bool:
    hosts, registered = ours
    if not host:
        return False
    return host in hosts or _registered_domain(host) in registered


def _registered_domains(hosts: Iterable[str]) -> Iterable[str]:
    for host in hosts:
        registered = _registered_domain(host)
        if registered:
            yield registered


def _registered_domain(host: str) -> str | None:
    try:
        return registered_domain(normalize_domain(host))
    except InvalidDomain:
        return None


def _mx_host(record: str) -> str:
    """``mx1.hoster.example`` of ``10 mx1.hoster.example.``."""
    return _strip_dot(record.split()[-1]) if record.split() else ""


def _strip_dot(name: str) -> str:
    return name.strip().rstrip(".").lower()


def _host_only(host: str) -> str:
    """The public host without a port, normalised (as written when it names none)."""
    try:
        return public_host_name(host)
    except InvalidDomain:
        return host
