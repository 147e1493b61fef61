"""Per-user lookups against real sources (issue 19): a map file, Debian's
PostgreSQL with a Dovecot-style users table, Debian's slapd with users, an
alias and a user on another mail store. Each server is the test's own, in a
temporary folder on a free port of 127.0.0.1, stopped by its process id.

What a user would check: the login (and host) in the autoconfig XML, the POX
answer, the Apple profile and the page; the JSON answer the same for all; an
unknown address answered exactly as without a lookup; a stopped source
answered with the default within the timeout; a changed row served after the
cache time; no clear split between the answer times of known and unknown
addresses.
"""

from __future__ import annotations

import html
import json
import plistlib
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from lxml import etree

from autoconf.app import Application, create_app
from autoconf.render.autodiscover import request_document
from autoconf.settings import Settings
from tests.e2e.directories import (
    LDAP_ADMIN,
    LDAP_PASSWORD,
    LDAP_SUFFIX,
    Postgres,
    Slapd,
    start_postgres,
    start_slapd,
)
from tests.e2e.processes import EXECUTABLE, start_service
from tests.helpers import wait_for

SERVERS = """\
domains: [example.org]
incoming:
  - {type: imap, host: imap.example.org, security: ssl}
outgoing:
  - {host: smtp.example.org, security: starttls}
"""
NS = {"r": "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"}
TIMEOUT = 1.0


@dataclass
class Source:
    name: str
    lookup: str  # the lookup: block
    prepare: Callable[[Path], None]  # writes what the block names (a map, a password)
    change: Callable[[Path], None]  # camille's login becomes camille2
    stop: Callable[[], None] | None  # stops the source (None: a map file cannot stop)


@dataclass
class Answers:
    login_in: str
    host_in: str
    login_out: str
    host_out: str


def answers(app: Application, address: str) -> dict[str, Answers | bytes]:
    """What each endpoint answers ``address``, parsed as a client would."""
    client = app.test_client()
    found: dict[str, Answers | bytes] = {}
    xml = etree.fromstring(client.get(f"/mail/config-v1.1.xml?emailaddress={address}").data)
    found["autoconfig"] = Answers(
        xml.findtext("emailProvider/incomingServer/username") or "",
        xml.findtext("emailProvider/incomingServer/hostname") or "",
        xml.findtext("emailProvider/outgoingServer/username") or "",
        xml.findtext("emailProvider/outgoingServer/hostname") or "",
    )
    pox = etree.fromstring(
        client.post("/autodiscover/autodiscover.xml", data=request_document(address)).data
    )
    protocols = pox.findall("r:Response/r:Account/r:Protocol", NS)
    found["pox"] = Answers(
        *(
            p.findtext(f"r:{tag}", namespaces=NS) or ""
            for p in protocols
            for tag in ("LoginName", "Server")
        )
    )
    profile = plistlib.loads(client.get(f"/mobileconfig?emailaddress={address}").data)
    mail = profile["PayloadContent"][0]
    found["mobileconfig"] = Answers(
        mail["IncomingMailServerUsername"],
        mail["IncomingMailServerHostName"],
        mail["OutgoingMailServerUsername"],
        mail["OutgoingMailServerHostName"],
    )
    page = client.get(f"/?emailaddress={address}").data.decode()
    cells = [
        html.unescape(re.sub(r"<[^>]+>", "", c)).strip()
        for c in re.findall(r"<td[^>]*>(.*?)</td>", page, re.S)
    ]
    found["page"] = Answers(
        next(c for c in cells if c in {"camille", "camille2", "m0123456", address}),
        next(c for c in cells if c.startswith(("imap", "mail"))),
        "",
        next(c for c in cells if c.startswith("smtp")),
    )
    found["json"] = client.get(
        f"/autodiscover/autodiscover.json?Email={address}&Protocol=AutodiscoverV1"
    ).data
    return found


def logins(app: Application, address: str) -> set[tuple[str, str]]:
    """(endpoint's incoming login, its incoming host) for each endpoint."""
    return {
        (a.login_in, a.host_in)
        for name, a in answers(app, address).items()
        if isinstance(a, Answers)
    }


# -- the sources ---------------------------------------------------------------

USERS = {  # address: (login, incoming host or None)
    "camille.doe@example.org": ("camille", None),
    "m0123456@example.org": ("m0123456", "imap3.hoster.example"),
}


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    server = start_postgres()
    # Dovecot's passdb/userdb as the docs set it up: one row per mailbox.
    server.execute(
        "CREATE TABLE users (email text PRIMARY KEY, userid text NOT NULL, mail_host text)",
        "CREATE TABLE aliases (address text PRIMARY KEY, goto text NOT NULL)",
        "CREATE ROLE autoconf LOGIN PASSWORD 'reader-secret'",
        "GRANT SELECT ON users, aliases TO autoconf",
        "INSERT INTO users VALUES ('camille.doe@example.org', 'camille', NULL),"
        " ('m0123456@example.org', 'm0123456', 'imap3.hoster.example')",
        "INSERT INTO aliases VALUES ('c.doe@example.org', 'camille.doe@example.org')",
        "INSERT INTO users SELECT 'user' || n || '@example.org', 'u' || n, NULL"
        " FROM generate_series(1, 300) AS n",
    )
    yield server
    server.remove()


LDIF_HEAD = f"""\
dn: {LDAP_SUFFIX}
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ou=people,{LDAP_SUFFIX}
objectClass: organizationalUnit
ou: people

dn: uid=camille,ou=people,{LDAP_SUFFIX}
objectClass: inetOrgPerson
objectClass: inetLocalMailRecipient
uid: camille
cn: Camille Doe
sn: Doe
mail: camille.doe@example.org
mailLocalAddress: c.doe@example.org

dn: uid=m0123456,ou=people,{LDAP_SUFFIX}
objectClass: inetOrgPerson
objectClass: inetLocalMailRecipient
uid: m0123456
cn: M Other
sn: Other
mail: m0123456@example.org
mailHost: imap3.hoster.example
"""


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    server = start_slapd(tmp_path_factory.mktemp("slapd"), LDIF_HEAD)
    yield server
    server.remove()


def map_source() -> Source:
    def prepare(folder: Path) -> None:
        (folder / "logins.map").write_text(
            "# address login, or address key=value\n"
            "camille.doe@example.org camille\n"
            "m0123456@example.org login=m0123456 incoming_host=imap3.hoster.example\n"
            "c.doe@example.org alias=camille.doe@example.org\n",
            encoding="utf-8",
        )

    def change(folder: Path) -> None:
        path = folder / "logins.map"
        path.write_text(path.read_text().replace(" camille\n", " camille2\n"), encoding="utf-8")

    block = "lookup:\n  map: logins.map\n  keys: [address, localpart, alias]\n  cache: 1\n"
    return Source("map", block, prepare, change, None)


def sql_source(server: Postgres) -> Source:
    def prepare(folder: Path) -> None:
        (folder / "pg.password").write_text("reader-secret\n", encoding="utf-8")

    def change(folder: Path) -> None:
        server.execute("UPDATE users SET userid = 'camille2' WHERE userid = 'camille'")

    block = f"""\
lookup:
  postgresql:
    connection: "host=127.0.0.1 port={server.port} dbname=mail user=autoconf"
    password_file: pg.password
    query: "SELECT userid AS login, mail_host AS incoming_host FROM users WHERE email = %(key)s"
    alias_query: >-
      SELECT u.userid AS login, u.mail_host AS incoming_host
      FROM aliases a JOIN users u ON u.email = a.goto WHERE a.address = %(key)s
  keys: [address, alias]
  timeout: {TIMEOUT}
  cache: 1
"""
    return Source("postgresql", block, prepare, change, server.stop)


def ldap_source(server: Slapd) -> Source:
    def prepare(folder: Path) -> None:
        (folder / "ldap.password").write_text(LDAP_PASSWORD + "\n", encoding="utf-8")

    def change(folder: Path) -> None:
        import ldap3

        connection = ldap3.Connection(
            ldap3.Server(server.url), LDAP_ADMIN, LDAP_PASSWORD, auto_bind=True
        )
        dn = f"uid=camille,ou=people,{LDAP_SUFFIX}"
        connection.modify_dn(dn, "uid=camille2")
        connection.unbind()

    block = f"""\
lookup:
  ldap:
    url: {server.url}
    base: ou=people,{LDAP_SUFFIX}
    bind_dn: {LDAP_ADMIN}
    password_file: ldap.password
    filter: "(&(objectClass=inetOrgPerson)(mail={{key}}))"
    alias_filter: "(mailLocalAddress={{key}})"
    login: uid
    incoming_host: mailHost
  keys: [address, alias]
  timeout: {TIMEOUT}
  cache: 1
"""
    return Source("ldap", block, prepare, change, server.stop)


def build(folder: Path, source: Source, with_lookup: bool = True) -> Application:
    folder.mkdir(exist_ok=True)
    source.prepare(folder)
    text = SERVERS + (source.lookup if with_lookup else "")
    (folder / "example.org.yaml").write_text(text, encoding="utf-8")
    return create_app(Settings(domains=folder, reload_seconds=0.2))  # type: ignore[call-arg]


# Each source in a fresh server of its own: the tests change rows and stop servers.
@pytest.fixture(params=["map", "postgresql", "ldap"])
def source(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Source:
    if request.param == "map":
        return map_source()
    if request.param == "postgresql":
        return sql_source(request.getfixturevalue("fresh_postgres"))
    return ldap_source(request.getfixturevalue("fresh_slapd"))


@pytest.fixture
def fresh_postgres(postgres: Postgres) -> Iterator[Postgres]:
    postgres.run()  # again, when a test stopped it
    yield postgres
    postgres.run()
    postgres.execute("UPDATE users SET userid = 'camille' WHERE userid = 'camille2'")


@pytest.fixture
def fresh_slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    server = start_slapd(tmp_path_factory.mktemp("slapd"), LDIF_HEAD)
    yield server
    server.remove()


def test_known_users_get_their_login_and_host_everywhere(source: Source, tmp_path: Path) -> None:
    app = build(tmp_path / "domains", source)
    plain = build(tmp_path / "plain", source, with_lookup=False)
    try:
        assert logins(app, "camille.doe@example.org") == {("camille", "imap.example.org")}
        assert logins(app, "m0123456@example.org") == {("m0123456", "imap3.hoster.example")}
        # An alias finds its user's own login (the source's alias query or lines).
        assert logins(app, "c.doe@example.org") == {("camille", "imap.example.org")}
        # The address cannot change the query or the filter: a bound parameter, an
        # escaped filter ("camille*" would match camille.doe as an LDAP pattern).
        for hostile in ("camille*@example.org", "x'or'1'='1@example.org"):
            assert logins(app, hostile) == {(hostile, "imap.example.org")}
        # Outgoing: the same login, the file's host (no outgoing_host was given).
        for name, found in answers(app, "m0123456@example.org").items():
            if isinstance(found, Answers) and name != "page":
                assert (found.login_out, found.host_out) == ("m0123456", "smtp.example.org")
        # An unknown address: exactly the answer without a lookup, and so is the JSON
        # answer for everyone (it names no login; the POX answer it points at does).
        known, unknown = answers(app, "m0123456@example.org"), answers(app, "nobody@example.org")
        assert answers(plain, "nobody@example.org") == unknown
        assert known["json"] == unknown["json"]
        assert json.loads(known["json"])["Protocol"] == "AutodiscoverV1"  # type: ignore[arg-type]
        client, bare = app.test_client(), plain.test_client()
        for path in (
            "/mail/config-v1.1.xml?emailaddress=nobody@example.org",
            "/?emailaddress=x@example.org",
        ):
            assert client.get(path).data == bare.get(path).data
    finally:
        app.close()
        plain.close()


def test_a_changed_row_is_served_after_the_cache_time(source: Source, tmp_path: Path) -> None:
    app = build(tmp_path / "domains", source)
    try:
        assert logins(app, "camille.doe@example.org") == {("camille", "imap.example.org")}
        source.change(tmp_path / "domains")
        started = time.monotonic()
        wait_for(
            lambda: logins(app, "camille.doe@example.org") == {("camille2", "imap.example.org")},
            10,
            "the changed login",
        )
        assert time.monotonic() - started < 5
    finally:
        app.close()


def test_a_stopped_source_gives_the_default_within_the_timeout(
    source: Source, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    if source.stop is None:
        return  # a map file is read with the domain file: it cannot stop
    app = build(tmp_path / "domains", source)
    client = app.test_client()
    try:
        assert logins(app, "camille.doe@example.org") == {("camille", "imap.example.org")}
        source.stop()
        for address in ("m0123456@example.org", "nobody@example.org"):
            started = time.monotonic()
            answer = client.get(f"/mail/config-v1.1.xml?emailaddress={address}")
            elapsed = time.monotonic() - started
            assert answer.status_code == 200
            xml = etree.fromstring(answer.data)
            assert xml.findtext("emailProvider/incomingServer/username") == address
            assert xml.findtext("emailProvider/incomingServer/hostname") == "imap.example.org"
            assert elapsed < TIMEOUT + 0.5, elapsed
        health = json.loads(client.get("/healthz").data)
        assert health["status"] == "degraded"
        failing = health["lookups_failing"]
        assert [f["source"] for f in failing] == [source.name]
        assert "@" not in json.dumps(failing) and "secret" not in json.dumps(health)
        # One log line: the file, the source and the reason; never the address.
        lines = [
            r.getMessage()
            for r in caplog.records
            if r.name == "autoconf" and "failed" in r.getMessage()
        ]
        assert lines and all(f"({source.name}) failed: " in line for line in lines), lines
        assert not any("@" in line for line in lines), lines
        metrics = client.get("/metrics").data.decode()
        assert re.search(
            rf'autoconf_lookups_total{{outcome="failed",source="{source.name}"}} [1-9]', metrics
        )
    finally:
        app.close()


def test_known_and_unknown_addresses_take_the_same_time(postgres: Postgres, tmp_path: Path) -> None:
    """Cold lookups (no cache) of 150 known and 150 unknown addresses, interleaved:
    the chance that a known one is answered faster than an unknown one stays near
    one half. A lookup that did more work for either (an extra query, an early
    return) pushes it to 0 or 1."""
    source = sql_source(postgres)
    source.lookup = source.lookup.replace("cache: 1", "cache: 0")
    app = build(tmp_path / "domains", source)
    client = app.test_client()
    try:
        known: list[float] = []
        unknown: list[float] = []
        for n in range(1, 151):
            for address, times in (
                (f"user{n}@example.org", known),
                (f"none{n}@example.org", unknown),
            ):
                started = time.perf_counter()
                client.get(f"/mail/config-v1.1.xml?emailaddress={address}")
                times.append(time.perf_counter() - started)
        faster = sum(k < u for k in known for u in unknown) / (len(known) * len(unknown))
        assert 0.3 < faster < 0.7, (faster, sorted(known)[75], sorted(unknown)[75])
    finally:
        app.close()


def test_check_online_and_render_show_the_lookup(postgres: Postgres, tmp_path: Path) -> None:
    """``check --online`` runs one query per lookup; ``render`` answers with the
    looked-up login and says on stderr what was found; a source that is down is an
    error of check --online (exit 1), and render answers the default."""
    folder = tmp_path / "domains"
    build(folder, sql_source(postgres)).close()
    checked = subprocess.run(
        [str(EXECUTABLE), "check", "--online", str(folder)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert re.search(r"example.org.yaml: lookup \(postgresql\): answered in \d+ ms", checked.stdout)
    rendered = subprocess.run(
        [str(EXECUTABLE), "render", "m0123456@example.org", "--domains", str(folder)],
        capture_output=True,
    )
    assert rendered.returncode == 0, rendered.stderr
    xml = etree.fromstring(rendered.stdout)
    assert xml.findtext("emailProvider/incomingServer/username") == "m0123456"
    assert xml.findtext("emailProvider/incomingServer/hostname") == "imap3.hoster.example"
    assert b"lookup (postgresql): found: login=m0123456, incoming_host=imap3.hoster.example" in (
        rendered.stderr
    )
    postgres.stop()
    try:
        down = subprocess.run(
            [str(EXECUTABLE), "check", "--online", str(folder)], capture_output=True, text=True
        )
        assert down.returncode == 1
        assert "lookup (postgresql): error: " in down.stdout
        assert "1 lookup not answering" in down.stdout
        assert "secret" not in down.stdout + down.stderr
    finally:
        postgres.run()


def test_a_domains_query_gives_the_provider_its_domains(postgres: Postgres, tmp_path: Path) -> None:
    """The control panel's domain table is the provider's domain list, re-read on the
    reload schedule: a new row serves within a reload; the database down keeps the
    last list serving (the file is broken, its last good version serves)."""
    postgres.execute(
        "CREATE TABLE IF NOT EXISTS domain (name text PRIMARY KEY, active boolean)",
        "DELETE FROM domain",
        "GRANT SELECT ON domain TO autoconf",
        "INSERT INTO domain VALUES ('panel-one.example', true), ('panel-off.example', false)",
    )
    source = sql_source(postgres)
    source.lookup = source.lookup.replace(
        "  keys:",
        '    domains_query: "SELECT name FROM domain WHERE active ORDER BY name"\n  keys:',
    )
    folder = tmp_path / "domains"
    folder.mkdir()
    source.prepare(folder)
    (folder / "panel.yaml").write_text(
        SERVERS.replace("domains: [example.org]\n", "") + source.lookup, encoding="utf-8"
    )
    app = create_app(Settings(domains=folder, reload_seconds=0.2))  # type: ignore[call-arg]
    client = app.test_client()

    def status(domain: str) -> int:
        return client.get(f"/mail/config-v1.1.xml?emailaddress=a@{domain}").status_code

    try:
        assert (status("panel-one.example"), status("panel-off.example")) == (200, 404)
        postgres.execute("INSERT INTO domain VALUES ('panel-two.example', true)")
        wait_for(lambda: status("panel-two.example") == 200, 10, "the new domain served")
        postgres.stop()
        wait_for(
            lambda: json.loads(client.get("/healthz").data)["broken_files"] == 1,
            10,
            "the file broken while the database is down",
        )
        assert status("panel-two.example") == 200  # its last good version serves
        postgres.run()
        postgres.execute("DELETE FROM domain WHERE name = 'panel-one.example'")
        wait_for(lambda: status("panel-one.example") == 404, 10, "the removed domain gone")
    finally:
        app.close()


@pytest.mark.parametrize(
    ("case", "query"),
    [
        ("slow", "SELECT 'camille' AS login FROM pg_sleep(5) WHERE %(key)s <> ''"),
        (
            "garbage",
            "SELECT 'two words' AS login, 'no_such host' AS incoming_host WHERE %(key)s <> ''",
        ),
        ("two rows", "SELECT userid AS login FROM users WHERE %(key)s <> '' LIMIT 2"),
    ],
)
def test_a_slow_or_garbage_source_gives_the_default(
    postgres: Postgres, tmp_path: Path, case: str, query: str
) -> None:
    """A query slower than the timeout, a row that is no login or host, two rows for
    one key: each is the default answer within the timeout, a failure in /healthz."""
    source = sql_source(postgres)
    start = source.lookup.index("    query:")
    end = source.lookup.index("  keys:")
    source.lookup = (
        source.lookup[:start] + f'    query: "{query}"\n' + source.lookup[end:]
    ).replace("[address, alias]", "[address]")
    app = build(tmp_path / "domains", source)
    client = app.test_client()
    try:
        started = time.monotonic()
        assert logins(app, "camille.doe@example.org") == {
            ("camille.doe@example.org", "imap.example.org")
        }
        # Five endpoints asked (the first asks the source, the others the cache).
        assert time.monotonic() - started < TIMEOUT + 1.0
        health = json.loads(client.get("/healthz").data)
        assert health["status"] == "degraded"
        assert "camille" not in json.dumps(health)
        assert "two words" not in json.dumps(health) and "no_such" not in json.dumps(health)
    finally:
        app.close()


def test_the_real_serve_looks_up_in_each_worker(
    postgres: Postgres, slapd: Slapd, tmp_path: Path
) -> None:
    """``mail-autoconf serve`` (gunicorn, 2 workers forked from the loading master):
    every worker asks PostgreSQL and LDAP through connections of its own, made
    after the fork; the log has the lookup's failure without the address."""
    folder = tmp_path / "domains"
    folder.mkdir()
    for name, source in (
        ("example.org", sql_source(postgres)),
        ("ldap.example", ldap_source(slapd)),
    ):
        source.prepare(folder)
        lookup = source.lookup
        if name == "ldap.example":  # by the local part: uid=m0123456 for m0123456@ldap.example
            lookup = lookup.replace("(mail={key})", "(uid={key})").replace(
                "[address, alias]", "[localpart]"
            )
        text = SERVERS.replace("example.org]", f"{name}]") + lookup
        (folder / f"{name}.yaml").write_text(text, encoding="utf-8")
    service, port = start_service(folder, tmp_path)
    try:
        for _ in range(6):  # both workers, by the odds of six tries
            for address, login in (
                ("m0123456@example.org", "m0123456"),
                ("m0123456@ldap.example", "m0123456"),
                ("nobody@example.org", "nobody@example.org"),
            ):
                answer = requests.get(
                    f"http://127.0.0.1:{port}/mail/config-v1.1.xml",
                    params={"emailaddress": address},
                    timeout=5,
                )
                xml = etree.fromstring(answer.content)
                assert xml.findtext("emailProvider/incomingServer/username") == login
    finally:
        service.stop()
    assert "Traceback" not in service.log_text()
