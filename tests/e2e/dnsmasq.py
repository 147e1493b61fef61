"""Debian's dnsmasq as a private name server: MX records for test domains, on
127.0.0.1:53 of a network namespace of the test's own (tests/e2e/namespace.py)."""

from __future__ import annotations

import shutil
import socket
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.processes import Started, start, wait_until

DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"


@dataclass
class Dnsmasq:
    started: Started  # its log has a line for each query: "query[MX] example.test from …"

    def stop(self) -> None:
        self.started.stop()


def _answers(port: int) -> bool:
    """Whether a name server on 127.0.0.1:``port`` answers a question (any answer)."""
    question = struct.pack(">HHHHHH", 0x4D58, 0x0100, 1, 0, 0, 0) + b"\x00\x00\x01\x00\x01"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.5)
        try:
            sock.sendto(question, ("127.0.0.1", port))
            return sock.recv(512)[:2] == question[:2]
        except OSError:
            return False


def start_dnsmasq(workdir: Path, mx: Mapping[str, str], zone: str) -> Dnsmasq:
    """dnsmasq answering ``mx`` (domain: its one MX host) and NXDOMAIN for every
    other name under ``zone``; it reads no configuration file, no /etc/hosts, no
    upstream server, and logs every query. Start it inside the namespace."""
    workdir.mkdir(parents=True, exist_ok=True)
    command = [
        DNSMASQ,
        "--keep-in-foreground",
        "--conf-file=/dev/null",  # not /etc/dnsmasq.conf nor /etc/dnsmasq.d
        "--no-resolv",
        "--no-hosts",
        "--no-poll",
        "--pid-file",  # none
        "--user=root",
        "--listen-address=127.0.0.1",
        "--bind-interfaces",
        "--port=53",
        f"--local=/{zone}/",  # answered here, never forwarded
        "--log-queries",
        "--log-facility=-",
        *(f"--mx-host={domain},{host},10" for domain, host in mx.items()),
    ]
    started = start(command, workdir / "dnsmasq.log", cwd=workdir)
    wait_until(lambda: _answers(53), started, "dnsmasq")
    return Dnsmasq(started)
