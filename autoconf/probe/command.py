"""``mail-autoconf probe``: every server of a domain file at once, and the report.

:func:`make_contexts` for the TLS trust, :func:`probe_provider` to probe the
servers in parallel, :func:`format_table` for the table printed, and
:func:`probe_main` for the command's exit code.
"""

from __future__ import annotations

import ssl
import sys
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

from autoconf.exits import Exit
from autoconf.model import Provider, Server
from autoconf.placeholders import EMAILDOMAIN, fill
from autoconf.probe.checks import Contexts, Result, probe_server, reason
from autoconf.probe.oauth import format_checks, probe_issuer


def make_contexts(ca_file: Path | None) -> Contexts:
    """Client contexts trusting the system store, plus ``ca_file`` when given."""
    verify = ssl.create_default_context()
    names = ssl.create_default_context()
    names.check_hostname = False
    if ca_file is not None:
        verify.load_verify_locations(cafile=str(ca_file))
        names.load_verify_locations(cafile=str(ca_file))
    return Contexts(verify, names, ca_file)


def probe_provider(
    provider: Provider, domain: str, contexts: Contexts, timeout: float
) -> list[Result]:
    """Probe every server of the file at once; results in the file's order."""
    servers = provider.incoming + provider.outgoing
    hosts = [fill(s.host, {EMAILDOMAIN: domain}) for s in servers]
    pool = ThreadPoolExecutor(max_workers=min(16, len(servers)))
    try:
        futures = [
            pool.submit(probe_server, server, host, contexts, timeout)
            for server, host in zip(servers, hosts, strict=True)
        ]
        # Each probe keeps its own deadline (twice for a certificate's names); this
        # only guards against a name lookup that hangs, which no timeout bounds.
        wait(futures, timeout=timeout * 2 + 5)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return [
        future.result() if future.done() else Result(server, host, False, "no answer in time")
        for future, server, host in zip(futures, servers, hosts, strict=True)
    ]


def format_table(results: list[Result], served: tuple[Server, ...]) -> str:
    header = ("server", "port", "security", "result", "detail")
    rows = [header]
    for r in results:
        detail = r.detail if r.server in served else f"{r.detail} [not served: plaintext rule]"
        result = "ok" if r.ok else "FAIL"
        server = f"{r.server.type.value} {r.host}"
        rows.append((server, str(r.server.port), r.server.security.value, result, detail))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = [
        "  ".join([*(c.ljust(w) for c, w in zip(row, widths, strict=False)), row[-1]])
        for row in rows
    ]
    failed = sum(not r.ok for r in results)
    lines.append(f"{len(results)} servers: {len(results) - failed} ok, {failed} failed")
    return "\n".join(lines)


def probe_main(provider: Provider, domain: str, *, ca_file: Path | None, timeout: float) -> int:
    """Print the table; 0 when every server does what the file says, 1 otherwise."""
    try:
        contexts = make_contexts(ca_file)
    except (OSError, ssl.SSLError) as exc:
        print(f"{ca_file}: cannot load as a CA file ({reason(exc)})", file=sys.stderr)
        return Exit.USAGE
    results = probe_provider(provider, domain, contexts, timeout)
    print(format_table(results, provider.served_incoming + provider.served_outgoing))
    failed = not all(r.ok for r in results)
    if provider.oauth2 is not None:
        checks = probe_issuer(provider.oauth2, domain, contexts.verify, timeout)
        print(format_checks(provider.oauth2.issuer_url, checks))
        failed = failed or any(c.failed for c in checks)
    return Exit.INVALID if failed else Exit.OK
