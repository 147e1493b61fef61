"""Debian's PostgreSQL and OpenLDAP slapd for the per-user lookup tests, each a
server of the test's own: configured in a temporary folder, on a free port of
127.0.0.1, stopped by its process id. The machine's own clusters and services
are never touched.

PostgreSQL refuses to run as root, so its folder belongs to the ``postgres``
user (which Debian's package makes) and initdb and postgres run as that user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tests.e2e.processes import Started, free_port, port_open, start, wait_until

PG_BIN = max(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
SLAPD = Path("/usr/sbin/slapd")
SLAPADD = Path("/usr/sbin/slapadd")
SUPERUSER_PASSWORD = "super-secret"


@dataclass
class Postgres:
    started: Started | None
    folder: Path
    port: int

    def run(self) -> None:
        """Start postgres on the cluster (again, after a stop: on the same port)."""
        if self.started is not None and self.started.process.poll() is None:
            return
        log = self.folder / "postgres.log"
        command = [
            str(PG_BIN / "postgres"),
            "-D",
            str(self.folder / "data"),
            "-p",
            str(self.port),
            "-k",
            str(self.folder),  # the Unix socket in our folder, not /var/run/postgresql
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
            "-c",
            "max_connections=40",
        ]
        with log.open("ab") as output:
            process = subprocess.Popen(
                command, stdout=output, stderr=subprocess.STDOUT, cwd=self.folder, user="postgres"
            )
        self.started = Started(process, log)
        wait_until(lambda: port_open(self.port) and _accepts(self), self.started, "postgres")

    def conninfo(self, user: str = "postgres", password: str = SUPERUSER_PASSWORD) -> str:
        return f"host=127.0.0.1 port={self.port} dbname=mail user={user} password={password}"

    def execute(self, *statements: str) -> None:
        with psycopg.connect(self.conninfo(), autocommit=True) as connection:
            for statement in statements:
                connection.execute(statement.encode())

    def stop(self) -> None:
        """A fast shutdown (SIGINT): open connections are closed, not waited for."""
        if self.started is None:
            return
        process = self.started.process
        if process.poll() is None:
            os.kill(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def start_postgres() -> Postgres:
    """A new cluster (initdb) with a database ``mail``, the superuser's password
    SUPERUSER_PASSWORD, password logins (scram-sha-256) over TCP on a free port."""
    owner = pwd.getpwnam("postgres")
    folder = Path(tempfile.mkdtemp(prefix="autoconf-pg-"))
    os.chown(folder, owner.pw_uid, owner.pw_gid)
    secret = folder / "pwfile"
    secret.write_text(SUPERUSER_PASSWORD + "\n", encoding="utf-8")
    os.chown(secret, owner.pw_uid, owner.pw_gid)
    data = folder / "data"
    subprocess.run(
        [
            str(PG_BIN / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=scram-sha-256",
            f"--pwfile={secret}",
            "-E",
            "UTF8",
            "--no-locale",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
        user="postgres",
        cwd=folder,
    )
    server = Postgres(None, folder, free_port())
    server.run()
    return server


def _accepts(server: Postgres) -> bool:
    try:
        with psycopg.connect(server.conninfo().replace("dbname=mail", "dbname=postgres")) as c:
            c.autocommit = True
            if not c.execute("SELECT 1 FROM pg_database WHERE datname = 'mail'").fetchone():
                c.execute("CREATE DATABASE mail")
        return True
    except psycopg.OperationalError:
        return False


# -- slapd --------------------------------------------------------------------

LDAP_SUFFIX = "dc=example,dc=org"
LDAP_ADMIN = f"cn=admin,{LDAP_SUFFIX}"
LDAP_PASSWORD = "ldap-secret"


@dataclass
class Slapd:
    started: Started
    folder: Path
    port: int

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.started.stop()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def start_slapd(folder: Path, ldif: str) -> Slapd:
    """slapd with an mdb database of ``ldif`` under LDAP_SUFFIX (slapadd), its
    configuration a slapd.conf in ``folder``, on a free port of 127.0.0.1."""
    database = folder / "db"
    database.mkdir()
    conf = folder / "slapd.conf"
    conf.write_text(
        "\n".join(
            [
                "include /etc/ldap/schema/core.schema",
                "include /etc/ldap/schema/cosine.schema",
                "include /etc/ldap/schema/inetorgperson.schema",
                "include /etc/ldap/schema/misc.schema",
                f"pidfile {folder / 'slapd.pid'}",
                "modulepath /usr/lib/ldap",
                "moduleload back_mdb",
                "database mdb",
                f'suffix "{LDAP_SUFFIX}"',
                f'rootdn "{LDAP_ADMIN}"',
                f"rootpw {LDAP_PASSWORD}",
                f"directory {database}",
                "maxsize 10485760",
                "",
            ]
        ),
        encoding="utf-8",
    )
    data = folder / "data.ldif"
    data.write_text(ldif, encoding="utf-8")
    subprocess.run(
        [str(SLAPADD), "-f", str(conf), "-l", str(data)], check=True, capture_output=True
    )
    port = free_port()
    started = start(
        [str(SLAPD), "-f", str(conf), "-h", f"ldap://127.0.0.1:{port}/", "-d", "0"],
        folder / "slapd.log",
        cwd=folder,
    )
    wait_until(lambda: port_open(port), started, "slapd")
    return Slapd(started, folder, port)
