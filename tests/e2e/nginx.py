"""A real nginx from Debian running the files of deploy/nginx/, test paths filled in.

The HTTPS servers of the domains are what `mail-autoconf certificates --format
nginx` prints for the folder, and each certificate is issued by a test CA for
exactly the names `mail-autoconf certificates --format list` gives it, under
the name certbot would keep it by: what nginx picks by SNI is what a client
verifies.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import trustme

from autoconf.certificates import HTTPS_SNIPPET, LIVE, PUBLIC
from tests.e2e.processes import EXECUTABLE, Started, free_port, port_open, start, wait_until

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "nginx"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
# The public host (AUTOCONF_PUBLIC_HOST) the site is set up for in the tests, and
# the one the shipped site names, which an admin replaces.
PUBLIC_HOST = "autoconf.test.example"
SHIPPED_PUBLIC_HOST = "autoconf.hoster.example"
CERTIFICATES_CONF = "/etc/nginx/mail-autoconf/certificates.conf"
BARE = "mail-autoconf-bare"
# The test's own log beside the site's (which shows no host and no query, as
# deployed): the name the client asked for (SNI), its Host and the whole target.
HOSTS_LOG_FORMAT = "log_format test_hosts '$ssl_server_name $http_host \"$request_uri\" $status';"


def certificates(folder: Path, public_host: str | None, fmt: str) -> str:
    """`mail-autoconf certificates --format FMT` for the folder, as an admin runs it."""
    command = [str(EXECUTABLE), "certificates", "--format", fmt, "--domains", str(folder)]
    if public_host:
        command += ["--public-host", public_host]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AUTOCONF_")}
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=60, env=environment, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def certificate_names(folder: Path, public_host: str | None) -> dict[str, list[str]]:
    """Each certificate's name and host names, from ``--format list``."""
    lines = certificates(folder, public_host, "list").splitlines()
    return {name: names for name, *names in (line.split() for line in lines)}


def replace_all(text: str, replacements: Sequence[tuple[str, str]], what: str) -> str:
    """Each value an admin would edit must be found, or the deployed file and the
    tested one have drifted apart."""
    for old, new in replacements:
        assert old in text, f"{old!r} is no longer in {what}"
        text = text.replace(old, new)
    return text


@dataclass(frozen=True)
class SiteFiles:
    """The deployed files, written for a test into one folder."""

    site: Path
    live: Path  # certbot's live/ folder: NAME/fullchain.pem and NAME/privkey.pem


def write_site(
    workdir: Path,
    *,
    http_port: int,
    https_port: int,
    upstream_port: int,
    folder: Path,
    bare_domains: Sequence[str],
    public_host: str = PUBLIC_HOST,
    logs: Path | None = None,
    hosts_log: bool = False,
) -> SiteFiles:
    """deploy/nginx/ with this test's ports, paths and names, and the HTTPS servers
    `mail-autoconf certificates --format nginx` prints for ``folder``. The
    certificates are the caller's to put into ``live``. With ``hosts_log`` (and
    ``logs``), every request is also logged to ``logs/hosts.log`` in
    HOSTS_LOG_FORMAT, address and all."""
    workdir.mkdir(parents=True, exist_ok=True)
    live = workdir / "live"
    live.mkdir(exist_ok=True)
    proxy = workdir / "mail-autoconf-proxy.conf"
    shutil.copy(DEPLOY / "mail-autoconf-proxy.conf", proxy)
    logs_replaced = []
    if logs is not None:  # the site's own logs, where the test reads them
        logs_replaced = [
            ("/var/log/nginx/mail-autoconf.access.log", str(logs / "site-access.log")),
            ("/var/log/nginx/mail-autoconf.error.log", str(logs / "site-error.log")),
        ]
        if hosts_log:
            site_log = f"access_log {logs / 'site-access.log'} mail_autoconf;"
            logs_replaced[0] = (
                "access_log /var/log/nginx/mail-autoconf.access.log mail_autoconf;",
                f"{site_log}\n    access_log {logs / 'hosts.log'} test_hosts;",
            )

    snippet_text = (DEPLOY / "mail-autoconf-https.conf").read_text(encoding="utf-8")
    snippet_text, ipv6 = re.subn(r"\n *listen \[::\]:\d+( ssl)?;", "", snippet_text)
    assert ipv6 == 1, "every HTTPS server should listen on IPv6 too"
    snippet = workdir / "mail-autoconf-https.conf"
    snippet.write_text(
        replace_all(
            snippet_text,
            [
                ("listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;"),
                ("/etc/nginx/snippets/mail-autoconf-proxy.conf", str(proxy)),
                *logs_replaced,
            ],
            "mail-autoconf-https.conf",
        ),
        encoding="utf-8",
    )

    servers = workdir / "certificates.conf"
    servers.write_text(
        replace_all(
            certificates(folder, public_host, "nginx"),
            [(f"{LIVE}/", f"{live}/"), (HTTPS_SNIPPET, str(snippet))],
            "the output of certificates --format nginx",
        ),
        encoding="utf-8",
    )

    text = (DEPLOY / "mail-autoconf.conf").read_text(encoding="utf-8")
    text, ipv6 = re.subn(r"\n *listen \[::\]:\d+( ssl)?;", "", text)  # loopback only
    assert ipv6 == 3, "the site's own servers should listen on IPv6 too"
    assert text.count(SHIPPED_PUBLIC_HOST) == 3, "the public host: two servers and a comment"
    text = replace_all(
        text,
        [
            ("listen 80;", f"listen 127.0.0.1:{http_port};"),
            ("listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;"),
            ("server 127.0.0.1:8080;", f"server 127.0.0.1:{upstream_port};"),
            (SHIPPED_PUBLIC_HOST, public_host),
            (f"{LIVE}/", f"{live}/"),
            (HTTPS_SNIPPET, str(snippet)),
            ("/etc/nginx/snippets/mail-autoconf-proxy.conf", str(proxy)),
            (CERTIFICATES_CONF, str(servers)),
            ("server_name example.com example.net;", f"server_name {' '.join(bare_domains)};"),
            *logs_replaced,
        ],
        "mail-autoconf.conf",
    )
    site = workdir / "mail-autoconf.conf"
    site.write_text(text, encoding="utf-8")
    return SiteFiles(site, live)


def install_certificate(live: Path, name: str, issued: trustme.LeafCert) -> None:
    """A certificate where certbot keeps it: live/NAME/fullchain.pem and privkey.pem."""
    folder = live / name
    folder.mkdir(parents=True, exist_ok=True)
    fullchain = folder / "fullchain.pem"
    issued.cert_chain_pems[0].write_to_path(str(fullchain))
    for pem in issued.cert_chain_pems[1:]:
        pem.write_to_path(str(fullchain), append=True)
    issued.private_key_pem.write_to_path(str(folder / "privkey.pem"))


def main_config(workdir: Path, site: Path, hosts_log: bool = False) -> Path:
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
    {HOSTS_LOG_FORMAT if hosts_log else ""}
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
    return main


@dataclass
class Nginx:
    started: Started
    http_port: int
    https_port: int
    ca: trustme.CA
    ca_file: Path
    certificates: dict[str, list[str]]  # each certificate's name and host names

    def hosts_log(self) -> str:
        """With ``hosts_log``: every request so far, as HOSTS_LOG_FORMAT logs it (SNI,
        Host, the whole target, the status)."""
        path = self.started.log.parent / "hosts.log"
        return path.read_text(encoding="utf-8") if path.exists() else ""

    def stop(self) -> None:
        self.started.stop()


def start_nginx(
    workdir: Path,
    upstream_port: int,
    folder: Path,
    bare_domains: Sequence[str],
    *,
    public_host: str = PUBLIC_HOST,
    default_names: Sequence[str] = (),
    hosts_log: bool = False,
    http_port: int | None = None,
    https_port: int | None = None,
) -> Nginx:
    """nginx with the site for ``folder``: a certificate of the test CA for each one
    `mail-autoconf certificates` lists, and one for the bare domains.

    ``default_names`` go into the public host's certificate too: names no listed
    certificate can hold (a catch-all's) reach the default server, the public
    host's, where an on-demand certificate would name them. The ports are free
    ones unless given (80 and 443 inside a network namespace of the test's, for
    a client that cannot be pointed at others).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    http_port, https_port = http_port or free_port(), https_port or free_port()
    files = write_site(
        workdir,
        http_port=http_port,
        https_port=https_port,
        upstream_port=upstream_port,
        folder=folder,
        bare_domains=bare_domains,
        public_host=public_host,
        logs=workdir,
        hosts_log=hosts_log,
    )
    ca = trustme.CA()
    ca_file = workdir / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    names = certificate_names(folder, public_host)
    for name, hosts in names.items():
        extra = list(default_names) if name == PUBLIC else []
        install_certificate(files.live, name, ca.issue_cert(*hosts, *extra))
    install_certificate(files.live, BARE, ca.issue_cert(*bare_domains))
    main = main_config(workdir, files.site, hosts_log)
    started = start(
        [NGINX, "-p", str(workdir), "-c", str(main)], workdir / "nginx.out", cwd=workdir
    )
    wait_until(lambda: port_open(http_port) and port_open(https_port), started, "nginx")
    return Nginx(started, http_port, https_port, ca, ca_file, names)
