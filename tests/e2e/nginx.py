"""A real nginx from Debian running the site file of deploy/nginx/, test paths filled in."""

from __future__ import annotations

import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import trustme

from tests.e2e.processes import Started, free_port, port_open, start, wait_until

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "nginx"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def site_config(
    *,
    http_port: int,
    https_port: int,
    upstream_port: int,
    cert: Path,
    key: Path,
    snippet: Path,
    bare_domains: Sequence[str],
    logs: Path | None = None,
) -> str:
    """deploy/nginx/mail-autoconf.conf with this test's ports, paths and domains.

    Each value an admin would edit must be found, or the deployed file and the
    tested one have drifted apart.
    """
    text = (DEPLOY / "mail-autoconf.conf").read_text(encoding="utf-8")
    text, ipv6 = re.subn(r"\n *listen \[::\]:\d+( ssl)?;", "", text)  # loopback only
    assert ipv6 == 4, "the site should listen on IPv6 too, in all four servers"
    replacements = [
        ("listen 80;", f"listen 127.0.0.1:{http_port};"),
        ("listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;"),
        ("server 127.0.0.1:8080;", f"server 127.0.0.1:{upstream_port};"),
        ("/etc/ssl/mail-autoconf/fullchain.pem", str(cert)),
        ("/etc/ssl/mail-autoconf/privkey.pem", str(key)),
        ("/etc/nginx/snippets/mail-autoconf-proxy.conf", str(snippet)),
        ("server_name example.com example.net;", f"server_name {' '.join(bare_domains)};"),
    ]
    if logs is not None:  # the site's own logs, where the test reads them
        replacements += [
            ("/var/log/nginx/mail-autoconf.access.log", str(logs / "site-access.log")),
            ("/var/log/nginx/mail-autoconf.error.log", str(logs / "site-error.log")),
        ]
    for old, new in replacements:
        assert old in text, f"{old!r} is no longer in the deployed site file"
        text = text.replace(old, new)
    return text


@dataclass
class Nginx:
    started: Started
    http_port: int
    https_port: int
    ca: trustme.CA
    ca_file: Path

    def stop(self) -> None:
        self.started.stop()


# The test's own log beside the site's (which shows no host and no query, as
# deployed): the name the client asked for (SNI), its Host and the whole target.
HOSTS_LOG_FORMAT = "log_format test_hosts '$ssl_server_name $http_host \"$request_uri\" $status';"


def start_nginx(
    workdir: Path,
    upstream_port: int,
    domains: Sequence[str],
    cert_names: Sequence[str] | None = None,
    hosts_log: bool = False,
) -> Nginx:
    """nginx with a certificate for each domain and its autoconfig./autodiscover. names
    (or, given ``cert_names``, for those names alone). With ``hosts_log``, every
    request is also logged to hosts.log in HOSTS_LOG_FORMAT, address and all."""
    workdir.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    names = cert_names or [
        f"{prefix}{d}" for d in domains for prefix in ("", "autoconfig.", "autodiscover.")
    ]
    server_cert = ca.issue_cert(*names)
    cert, key, ca_file = workdir / "fullchain.pem", workdir / "privkey.pem", workdir / "ca.pem"
    server_cert.cert_chain_pems[0].write_to_path(str(cert))
    for pem in server_cert.cert_chain_pems[1:]:
        pem.write_to_path(str(cert), append=True)
    server_cert.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(ca_file))

    snippet = workdir / "mail-autoconf-proxy.conf"
    shutil.copy(DEPLOY / "mail-autoconf-proxy.conf", snippet)
    http_port, https_port = free_port(), free_port()
    site = workdir / "mail-autoconf.conf"
    site_text = site_config(
        http_port=http_port,
        https_port=https_port,
        upstream_port=upstream_port,
        cert=cert,
        key=key,
        snippet=snippet,
        bare_domains=domains,
        logs=workdir,
    )
    if hosts_log:
        site_log = f"access_log {workdir / 'site-access.log'} mail_autoconf;"
        assert site_text.count(site_log) == 4, "each of the four servers logs its requests"
        site_text = site_text.replace(
            site_log, f"{site_log}\n    access_log {workdir / 'hosts.log'} test_hosts;"
        )
    site.write_text(site_text, encoding="utf-8")
    temp = workdir / "temp"
    temp.mkdir(exist_ok=True)
    temp.chmod(0o777)  # nginx's workers drop root and still write their buffers here
    main = workdir / "nginx.conf"
    main.write_text(
        f"""daemon off;
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log info;
# As a production nginx.conf would allow (Debian: 768 a worker): the slow-client
# test holds some 250 connections at once, and must not run out.
events {{ worker_connections 1024; }}
http {{
    access_log {workdir}/access.log;
    {HOSTS_LOG_FORMAT}
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    include {site};
}}
""",
        encoding="utf-8",
    )
    started = start(
        [NGINX, "-p", str(workdir), "-c", str(main)], workdir / "nginx.out", cwd=workdir
    )
    wait_until(lambda: port_open(http_port) and port_open(https_port), started, "nginx")
    return Nginx(started, http_port, https_port, ca, ca_file)
