"""Debian's Pebble (an ACME test CA) and Caddy running deploy/caddy/Caddyfile,
test ports and paths filled in: certificates issued on demand, for real, on loopback."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import requests
import trustme

from tests.e2e.processes import Started, free_port, port_open, start, wait_until

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "caddy"
CADDY = shutil.which("caddy") or "/usr/bin/caddy"
PEBBLE = shutil.which("pebble") or "/usr/bin/pebble"


@dataclass
class Pebble:
    started: Started
    directory: str  # the ACME directory URL
    ca_file: Path  # what its own HTTPS listener's certificate is signed by
    root_file: Path  # the root the certificates it issues chain to

    def issued(self) -> int:
        """How many certificates it has issued, by its own log."""
        return self.started.log_text().count("Issued certificate serial")

    def stop(self) -> None:
        self.started.stop()


def start_pebble(workdir: Path) -> Pebble:
    """Pebble with validation switched off (PEBBLE_VA_ALWAYS_VALID, as its README
    documents): no challenge has to reach Caddy, every order is valid at once."""
    workdir.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    listener = ca.issue_cert("127.0.0.1", "localhost")
    cert, key, ca_file = workdir / "cert.pem", workdir / "key.pem", workdir / "listener-ca.pem"
    listener.cert_chain_pems[0].write_to_path(str(cert))
    listener.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(ca_file))
    port, management = free_port(), free_port()
    config = {
        "pebble": {
            "listenAddress": f"127.0.0.1:{port}",
            "managementListenAddress": f"127.0.0.1:{management}",
            "certificate": str(cert),
            "privateKey": str(key),
            "httpPort": free_port(),
            "tlsPort": free_port(),
            "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
        }
    }
    config_file = workdir / "pebble-config.json"
    config_file.write_text(json.dumps(config), encoding="utf-8")
    env = dict(os.environ)
    env.update(PEBBLE_VA_ALWAYS_VALID="1", PEBBLE_VA_NOSLEEP="1", PEBBLE_WFE_NONCEREJECT="0")
    started = start(
        [PEBBLE, "-config", str(config_file)], workdir / "pebble.log", cwd=workdir, env=env
    )
    wait_until(lambda: port_open(port) and port_open(management), started, "pebble")
    # Its root is made at each start; Thunderbird will trust it and nothing else new.
    root = requests.get(f"https://127.0.0.1:{management}/roots/0", verify=str(ca_file), timeout=5)
    root.raise_for_status()
    root_file = workdir / "pebble-root.pem"
    root_file.write_bytes(root.content)
    return Pebble(started, f"https://127.0.0.1:{port}/dir", ca_file, root_file)


def caddyfile(
    *,
    upstream_port: int,
    http_port: int,
    https_port: int,
    pebble: Pebble,
    storage: Path,
    public_host: str,
) -> str:
    """deploy/caddy/Caddyfile with this test's CA, ports and upstream.

    Each value an admin would edit must be found, or the deployed file and the
    tested one have drifted apart.
    """
    text = (DEPLOY / "Caddyfile").read_text(encoding="utf-8")
    test_globals = "\n".join(
        [
            "\temail test@hoster.test",
            f"\tacme_ca {pebble.directory}",
            f"\tacme_ca_root {pebble.ca_file}",
            f"\thttp_port {http_port}",
            f"\thttps_port {https_port}",
            f"\tstorage file_system {storage}",
            "\tadmin off",
            "\tskip_install_trust",
            "\tdefault_bind 127.0.0.1",
        ]
    )
    replacements = [
        ("\temail hostmaster@hoster.example", test_globals),
        (
            "ask http://127.0.0.1:8080/tls/allowed",
            f"ask http://127.0.0.1:{upstream_port}/tls/allowed",
        ),
        ("reverse_proxy 127.0.0.1:8080 {", f"reverse_proxy 127.0.0.1:{upstream_port} {{"),
        ("\nautoconf.hoster.example {", f"\n{public_host} {{"),
    ]
    for old, new in replacements:
        assert old in text, f"{old!r} is no longer in the deployed Caddyfile"
        text = text.replace(old, new)
    return text


@dataclass
class Caddy:
    started: Started
    http_port: int
    https_port: int

    def stop(self) -> None:
        self.started.stop()


def start_caddy(workdir: Path, upstream_port: int, pebble: Pebble, public_host: str) -> Caddy:
    """Caddy, ready when the public host's certificate (obtained at its start) is."""
    workdir.mkdir(parents=True, exist_ok=True)
    http_port, https_port = free_port(), free_port()
    config = workdir / "Caddyfile"
    config.write_text(
        caddyfile(
            upstream_port=upstream_port,
            http_port=http_port,
            https_port=https_port,
            pebble=pebble,
            storage=workdir / "storage",
            public_host=public_host,
        ),
        encoding="utf-8",
    )
    env = dict(os.environ)
    env.update(HOME=str(workdir), XDG_DATA_HOME=str(workdir), XDG_CONFIG_HOME=str(workdir))
    command = [CADDY, "run", "--config", str(config), "--adapter", "caddyfile"]
    started = start(command, workdir / "caddy.log", cwd=workdir, env=env)
    wait_until(lambda: port_open(http_port) and port_open(https_port), started, "caddy")

    def public_certificate() -> bool:
        return any(
            '"certificate obtained successfully"' in line and f'"{public_host}"' in line
            for line in started.log_text().splitlines()
        )

    wait_until(public_certificate, started, "caddy's certificate of the public host")
    return Caddy(started, http_port, https_port)
