"""A real CalDAV and CardDAV server for tests: Radicale (PyPI, pinned in the dev
extras) over its own TLS on a free port of 127.0.0.1, in a temporary folder.

Each user logs in with their address and a password (an htpasswd file, plain
text: test users only) and sees only their own collections (``owner_only``).
Every user gets one calendar and one address book, written into Radicale's
storage folder before it starts as Radicale itself keeps them
(``collection-root/USER/NAME/.Radicale.props``). Stopped by its PID.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import trustme

from tests.e2e.processes import Started, free_port, port_open, start, wait_until

CALENDAR = "calendar"
CONTACTS = "contacts"


@dataclass
class Radicale:
    started: Started
    port: int
    ca_file: Path  # the CA that issued its certificate

    def stop(self) -> None:
        self.started.stop()


def calendar_name(user: str) -> str:
    return f"Calendar of {user}"


def contacts_name(user: str) -> str:
    return f"Contacts of {user}"


def _collection(root: Path, user: str, name: str, props: Mapping[str, str]) -> None:
    folder = root / "collection-root" / user / name
    folder.mkdir(parents=True)
    (folder / ".Radicale.props").write_text(json.dumps(props), encoding="utf-8")


def start_radicale(workdir: Path, users: Mapping[str, str], hosts: list[str]) -> Radicale:
    """Radicale for ``users`` (address: password), with a certificate for ``hosts``."""
    workdir.mkdir(parents=True)
    ca = trustme.CA()
    ca_file = workdir / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    issued = ca.issue_cert(*hosts)
    cert, key = workdir / "cert.pem", workdir / "key.pem"
    issued.cert_chain_pems[0].write_to_path(str(cert))
    issued.private_key_pem.write_to_path(str(key))
    (workdir / "users").write_text(
        "".join(f"{user}:{password}\n" for user, password in users.items()), encoding="utf-8"
    )
    storage = workdir / "collections"
    for user in users:
        _collection(
            storage,
            user,
            CALENDAR,
            {
                "tag": "VCALENDAR",
                "D:displayname": calendar_name(user),
                "C:supported-calendar-component-set": "VEVENT,VTODO",
            },
        )
        _collection(
            storage, user, CONTACTS, {"tag": "VADDRESSBOOK", "D:displayname": contacts_name(user)}
        )
    port = free_port()
    config = workdir / "config"
    config.write_text(
        f"""[server]
hosts = 127.0.0.1:{port}
ssl = True
certificate = {cert}
key = {key}

[auth]
type = htpasswd
htpasswd_filename = {workdir / "users"}
htpasswd_encryption = plain
delay = 0

[rights]
type = owner_only

[storage]
filesystem_folder = {storage}

[web]
type = none

[logging]
level = info
mask_passwords = True
""",
        encoding="utf-8",
    )
    command = [sys.executable, "-m", "radicale", "--config", str(config)]
    started = start(command, workdir / "radicale.log", cwd=workdir)
    wait_until(lambda: port_open(port), started, "Radicale")
    return Radicale(started, port, ca_file)
