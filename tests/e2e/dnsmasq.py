"""A real DNS server for tests: Debian's dnsmasq on a free port of 127.0.0.1,
or on port 53 inside a network namespace of the test's own (tests/e2e/namespace.py).

:func:`start_dnsmasq` takes the zone as dnsmasq's own record options
(``--srv-host=``, ``--mx-host=``, ``--cname=``, ``--host-record=``,
``--txt-record=``…) and answers from them alone: no upstream server, no
/etc/hosts, no configuration file, and every name the zone lacks is NXDOMAIN
(``--local=/#/``), never forwarded. A ``--cname=`` target must itself be in
the zone (a ``--host-record=``): dnsmasq serves CNAMEs only to names it knows.
No shell reads the options, so a TXT text is not quoted
(``--txt-record=a.test,v=spf1 -all``).
The process runs in the foreground and is stopped by its PID. Nothing is
installed or started at import; the Makefile's ``debian-packages`` target
installs dnsmasq.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.processes import Started, free_port, port_open, start, wait_until

DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
ATTEMPTS = 5  # free ports tried: another process may take one between the look and the bind


@dataclass
class Dnsmasq:
    started: Started
    port: int

    @property
    def nameserver(self) -> str:
        """What ``--resolver`` and ``AUTOCONF_RESOLVER`` take: ``127.0.0.1:PORT``."""
        return f"127.0.0.1:{self.port}"

    def queries(self) -> list[tuple[str, str]]:
        """Each question asked so far, as (type, name), from its query log."""
        return re.findall(r"query\[(\w+)\] (\S+) from", self.started.log_text())

    def stop(self) -> None:
        self.started.stop()


def udp_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_dns_port() -> int:
    """A port of 127.0.0.1 free for TCP and for UDP (dnsmasq binds both)."""
    for _ in range(20):
        port = free_port()
        if udp_free(port):
            return port
    raise AssertionError("no port free for both TCP and UDP on 127.0.0.1")


def command(port: int, records: Sequence[str]) -> list[str]:
    return [
        DNSMASQ,
        "--no-daemon",
        "--no-resolv",
        "--no-hosts",
        f"--port={port}",
        "--listen-address=127.0.0.1",
        "--bind-interfaces",
        "--conf-file=/dev/null",
        "--pid-file=",  # none: nothing is written to /run
        "--local=/#/",  # every name answered from the zone alone
        "--log-queries",  # the log shows what was asked, for a failing test
        "--log-facility=-",
        # As root it would change to the user "dnsmasq", which need not exist.
        *(["--user=root"] if os.geteuid() == 0 else []),
        *records,
    ]


def start_dnsmasq(folder: Path, records: Sequence[str], port: int | None = None) -> Dnsmasq:
    """dnsmasq serving ``records`` (its options, such as
    ``--srv-host=_imaps._tcp.a.test,imap.a.test,993,0,0``), ready when it listens,
    on ``port`` (53 inside a namespace, where a resolv.conf cannot name another)
    or a free one; the options are written to ``folder/zone.args``, its log to
    ``folder/dnsmasq.log``."""
    assert Path(DNSMASQ).exists(), "dnsmasq is missing: apt-get install dnsmasq-base"
    assert all(r.startswith("--") for r in records), "dnsmasq options, such as --srv-host=…"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "zone.args").write_text("\n".join(records) + "\n", encoding="utf-8")
    failures = []
    for _ in range(ATTEMPTS):
        chosen = port or free_dns_port()
        started = start(command(chosen, records), folder / "dnsmasq.log", cwd=folder)
        try:
            wait_until(functools.partial(port_open, chosen), started, "dnsmasq")
        except AssertionError as exc:
            started.stop()
            if port or "Address already in use" not in started.log_text():
                raise
            failures.append(str(exc))
            continue
        return Dnsmasq(started, chosen)
    raise AssertionError("dnsmasq found no free port:\n" + "\n".join(failures))
