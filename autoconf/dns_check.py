"""``mail-autoconf dns --check``: is what ``dns`` prints published? (docs/cli.md#dns)

Each record ``dns`` tells the admin to publish is asked of DNS through
:func:`autoconf.resolver.lookup` and gets a :class:`Verdict`:

- an SRV name (RFC 6186/8314, RFC 6764's ``_caldavs._tcp`` and
  ``_carddavs._tcp``, Outlook's ``_autodiscover._tcp``) is *present* when DNS
  has the same targets and ports in the same order of priority (weights and the
  priority numbers themselves may differ);
- a TXT ``path=`` (RFC 6764) is *present* when every TXT record of the name that
  has a ``path=`` string (the first, as Thunderbird reads it) gives the same path;
- ``autoconfig.D`` and ``autodiscover.D`` are *present* when the name is a
  CNAME of the public host, or when its addresses (A and AAAA, any CNAME
  followed) are exactly the public host's; where the name is the public host
  itself, when it has an address;
- PACC's ``_ua-auto-config.D`` TXT is *present* when one of its records is the
  digest of the very document the service answers for D, and ``ua-auto-config.D``
  is judged as ``autoconfig.D`` is;
- D's MX is shown (*info*), never judged: no record ``dns`` prints needs it.

*missing*: DNS has no such record; *different*: it has others (both shown);
*failed*: DNS gave no answer either way (a timeout, SERVFAIL), so nothing is
known; *skipped*: the service's names without a public host to compare with.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import Enum
from functools import partial

from autoconf.exits import Exit
from autoconf.model import Provider
from autoconf.render import pacc
from autoconf.render.dns import domain_records, service_names
from autoconf.resolver import LookupFailed, Nameserver, lookup

WORKERS = 8  # lookups at once: one domain's records are asked together


class Verdict(Enum):
    PRESENT = "present"
    MISSING = "missing"
    DIFFERENT = "different"
    FAILED = "failed"
    SKIPPED = "skipped"
    INFO = "info"


# What a client needs: a record missing or different fails the check.
WRONG = (Verdict.MISSING, Verdict.DIFFERENT)


@dataclass(frozen=True, slots=True)
class Outcome:
    verdict: Verdict
    name: str  # with its final dot
    type: str  # what is expected: "SRV", "TXT", "CNAME", "A/AAAA", "MX"
    want: str = ""  # the expected data ("0 0 993 imap.example.com.")
    # What DNS has (present, info: with its types, "SRV 0 0 993 imap.example.com."),
    # or why nothing is known (failed, skipped).
    have: str = ""

    def line(self) -> str:
        if self.verdict in (Verdict.PRESENT, Verdict.INFO):  # have: what DNS has, typed
            return f"{self.verdict.value:<10} {self.name} {self.have}"
        head = f"{self.verdict.value:<10} {self.name} {self.type}"
        if self.verdict is Verdict.MISSING:
            return f"{head}: want {self.want}; DNS has none"
        if self.verdict is Verdict.DIFFERENT:
            return f"{head}: want {self.want}; DNS has {self.have}"
        return f"{head}: {self.have}"  # failed, skipped: the reason


def dotted(name: str) -> str:
    return name.lower().rstrip(".") + "."


def srv_order(data: Iterable[str]) -> list[frozenset[tuple[int, str]]]:
    """SRV data as clients use it: (port, target) sets, in order of priority."""
    levels: dict[int, set[tuple[int, str]]] = {}
    for text in data:
        fields = text.split()
        if len(fields) != 4 or not all(f.isdigit() for f in fields[:3]):
            levels.setdefault(-1, set()).add((-1, text))  # never equal to what is expected
            continue
        priority, _weight, port, target = fields
        levels.setdefault(int(priority), set()).add((int(port), dotted(target)))
    return [frozenset(levels[priority]) for priority in sorted(levels)]


def judge_srv(name: str, want: list[str], have: tuple[str, ...]) -> Outcome:
    wanted = ", ".join(want)
    if not have:
        return Outcome(Verdict.MISSING, name, "SRV", wanted)
    if srv_order(have) == srv_order(want):
        return Outcome(Verdict.PRESENT, name, "SRV", wanted, f"SRV {', '.join(have)}")
    return Outcome(Verdict.DIFFERENT, name, "SRV", wanted, ", ".join(have))


def txt_paths(data: Iterable[str]) -> list[str]:
    """The ``path=`` of each TXT record (its first string that starts so, as
    Thunderbird reads them), from the records' zone-file text."""
    import dns.exception
    import dns.rdata
    import dns.rdataclass
    import dns.rdatatype

    paths = []
    for text in data:
        try:
            record = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.TXT, text)
        except dns.exception.DNSException:
            continue
        strings = [s.decode("utf-8", "replace") for s in getattr(record, "strings", ())]
        found = next((s for s in strings if s.startswith("path=")), None)
        if found is not None:
            paths.append(found)
    return paths


def judge_txt(name: str, want: str, have: tuple[str, ...]) -> Outcome:
    """``want`` is the record's data as ``dns`` prints it (``"path=/cal/"``)."""
    wanted = txt_paths([want])
    paths = txt_paths(have)
    if not paths:
        return Outcome(Verdict.MISSING, name, "TXT", want)
    if set(paths) == set(wanted):
        return Outcome(Verdict.PRESENT, name, "TXT", want, f"TXT {', '.join(have)}")
    return Outcome(Verdict.DIFFERENT, name, "TXT", want, ", ".join(have))


def _typed(rdtype: str, data: Iterable[str]) -> list[str]:
    return [f"{rdtype} {text}" for text in data]


class Checker:
    """Asks one DNS server (or the system's) about the records of domains."""

    def __init__(
        self, nameserver: Nameserver | None, timeout: float, public_host: str | None
    ) -> None:
        self.nameserver = nameserver
        self.timeout = timeout
        self.public_host = dotted(public_host) if public_host else None
        self.answered = 0  # lookups DNS answered (an empty answer included)
        self._lock = threading.Lock()
        self._host_addresses: tuple[str, ...] | LookupFailed | None = None
        self._pool = ThreadPoolExecutor(max_workers=WORKERS)

    def __enter__(self) -> Checker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def check(self, provider: Provider, domain: str) -> list[Outcome]:
        """``domain``'s outcomes, its lookups asked at once; each is bounded by the timeout."""
        futures = [self._pool.submit(call) for call in self.checks(provider, domain)]
        return [future.result() for future in futures]

    @property
    def resolver(self) -> str:
        return str(self.nameserver) if self.nameserver else "the system's (/etc/resolv.conf)"

    def ask(self, name: str, rdtype: str) -> tuple[str, ...]:
        try:
            found = lookup(name, rdtype, self.nameserver, self.timeout)
        except OSError as exc:  # a socket error dnspython let through: no answer either
            raise LookupFailed(f"{name} {rdtype}: {exc.strerror or exc}") from None
        with self._lock:
            self.answered += 1
        return found

    def addresses(self, name: str) -> tuple[str, ...]:
        """A and AAAA of ``name`` (CNAMEs followed), as ``"A 192.0.2.1"``."""
        found = _typed("A", self.ask(name, "A")) + _typed("AAAA", self.ask(name, "AAAA"))
        return tuple(sorted(found))

    def host_addresses(self) -> tuple[str, ...]:
        """The public host's addresses, asked once."""
        assert self.public_host is not None
        with self._lock:
            known = self._host_addresses
        if known is None:
            try:
                known = self.addresses(self.public_host)
            except LookupFailed as exc:
                known = exc
            with self._lock:
                self._host_addresses = known
        if isinstance(known, LookupFailed):
            raise known
        return known

    def judge_name(self, name: str) -> Outcome:
        """``autoconfig.D`` or ``autodiscover.D``: does it reach the public host?"""
        host = self.public_host
        assert host is not None
        if name == host:
            found = self.addresses(name)
            if found:
                return Outcome(Verdict.PRESENT, name, "A/AAAA", have=", ".join(found))
            return Outcome(Verdict.MISSING, name, "A/AAAA", "an address (it is the public host)")
        want = f"{host} (or the same addresses)"
        cname = tuple(dotted(target) for target in self.ask(name, "CNAME"))
        if cname == (host,):
            return Outcome(Verdict.PRESENT, name, "CNAME", want, f"CNAME {host}")
        found = self.addresses(name)
        have = ", ".join(_typed("CNAME", cname) + list(found))
        if not cname and not found:
            return Outcome(Verdict.MISSING, name, "CNAME", want)
        expected = self.host_addresses()
        if found and found == expected:
            return Outcome(
                Verdict.PRESENT, name, "CNAME", want, f"{have} (the addresses of {host})"
            )
        host_has = ", ".join(expected) or "no address"
        return Outcome(Verdict.DIFFERENT, name, "CNAME", want, f"{have} ({host} has {host_has})")

    def mx(self, domain: str) -> Outcome:
        name = f"{domain}."
        try:
            found = self.ask(name, "MX")
        except LookupFailed as exc:
            return Outcome(Verdict.INFO, name, "MX", have=f"MX unknown: {why(exc, name, 'MX')}")
        return Outcome(Verdict.INFO, name, "MX", have=f"MX {', '.join(found) or 'none'}")

    def checks(self, provider: Provider, domain: str) -> list[Callable[[], Outcome]]:
        """One call a record to judge, in the order ``dns`` prints them, MX last."""
        # An SRV name's records are judged together, where the first of them stands.
        wanted: dict[tuple[str, str], list[str]] = {}
        for record in domain_records(provider, domain, self.public_host):
            if record.type in ("SRV", "TXT"):
                wanted.setdefault((record.name, record.type), []).append(record.data)
        calls: list[Callable[[], Outcome]] = [
            partial(self.check_srv, name, data)
            if rdtype == "SRV"
            else partial(self.check_txt, name, data[0])
            for (name, rdtype), data in wanted.items()
        ]
        names = [dotted(name) for name in service_names(domain)]
        pacc_txt = f"{pacc.TXT_PREFIX}{domain}."
        if (pacc_txt, "TXT") in wanted:  # PACC's document is asked at ua-auto-config.D
            names.append(dotted(f"{pacc.HOST_PREFIX}{domain}"))
        if self.public_host is None:
            calls.append(partial(skipped, f"_autodiscover._tcp.{domain}.", "SRV"))
            calls += [partial(skipped, name, "CNAME") for name in names]
        else:
            calls += [partial(self.check_name, name) for name in names]
        calls.append(partial(self.mx, domain))
        return calls

    def check_srv(self, name: str, want: list[str]) -> Outcome:
        try:
            return judge_srv(name, want, self.ask(name, "SRV"))
        except LookupFailed as exc:
            return Outcome(Verdict.FAILED, name, "SRV", have=why(exc, name, "SRV"))

    def check_txt(self, name: str, want: str) -> Outcome:
        """RFC 6764's ``path=`` as Thunderbird reads it (:func:`judge_txt`), or PACC's
        digest: present when one of the name's TXT records is exactly ``want`` (its
        strings joined, as RFC 7208 reads a split one)."""
        try:
            found = self.ask(name, "TXT")
        except LookupFailed as exc:
            return Outcome(Verdict.FAILED, name, "TXT", have=why(exc, name, "TXT"))
        if "path=" in want:
            return judge_txt(name, want, found)
        have = tuple(txt_text(record) for record in found)
        if txt_text(want) in have:
            return Outcome(Verdict.PRESENT, name, "TXT", want, f"TXT {want}")
        if not have:
            return Outcome(Verdict.MISSING, name, "TXT", want)
        shown = ", ".join(f'"{text}"' for text in have)
        return Outcome(Verdict.DIFFERENT, name, "TXT", want, shown)

    def check_name(self, name: str) -> Outcome:
        try:
            return self.judge_name(name)
        except LookupFailed as exc:
            return Outcome(Verdict.FAILED, name, "CNAME", have=why(exc, name, "CNAME"))


_TXT_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')


def txt_text(record: str) -> str:
    """A TXT record's strings, joined (dnspython writes each quoted)."""
    pieces = _TXT_STRING.findall(record)
    return "".join(pieces) if pieces else record


def why(exc: LookupFailed, name: str, rdtype: str) -> str:
    """The reason of a failed lookup, without the name and type when they are the line's."""
    return str(exc).removeprefix(f"{name} {rdtype}: ")


def skipped(name: str, rdtype: str) -> Outcome:
    return Outcome(Verdict.SKIPPED, name, rdtype, have="give --public-host to check it")


@dataclass
class Tally:
    """The outcomes counted, for the summary line and the exit code."""

    domains: int = 0
    counts: dict[Verdict, int] = field(default_factory=dict)

    def add(self, outcomes: list[Outcome]) -> None:
        self.domains += 1
        for outcome in outcomes:
            self.counts[outcome.verdict] = self.counts.get(outcome.verdict, 0) + 1

    def count(self, verdict: Verdict) -> int:
        return self.counts.get(verdict, 0)

    def summary(self) -> str:
        """``[N domains, ]R records checked: P present, M missing, D different``, then the
        failed and skipped ones when there are any; MX is not counted."""
        checked = sum(self.count(v) for v in (Verdict.PRESENT, *WRONG, Verdict.FAILED))
        parts = ", ".join(
            f"{self.count(v)} {v.value}"
            for v in Verdict
            if v is not Verdict.INFO and (self.count(v) or v is Verdict.PRESENT or v in WRONG)
        )
        domains = f"{self.domains} domains, " if self.domains != 1 else ""
        return f"{domains}{checked} records checked: {parts}"

    def exit_code(self) -> Exit:
        """1 when a record is missing or different; else 3 when DNS did not answer."""
        if any(self.count(v) for v in WRONG):
            return Exit.INVALID
        if self.count(Verdict.FAILED):
            return Exit.NO_ANSWER
        return Exit.OK
