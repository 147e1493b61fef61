"""Per-user lookups from a map file, in-process (the PostgreSQL and LDAP sources
are tests/e2e/test_lookups.py's): the order of the keys tried, placeholders
filled where nothing was found, the same document shape hit or miss."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from lxml import etree

from autoconf.app import Application
from tests.conftest import ROOT

FILE = """\
domains: ["*"]
incoming:
  - {type: imap, host: "imap.%EMAILDOMAIN%", security: ssl, username: "%EMAILLOCALPART%"}
  - {type: pop3, host: "pop.%EMAILDOMAIN%", security: ssl}
outgoing:
  - {host: "smtp.%EMAILDOMAIN%", security: ssl, username: "%EMAILLOCALPART%"}
lookup:
  map: logins.map
  keys: [KEYS]
"""
MAP = """\
anna@example.org login=anna-full
anna login=anna-local outgoing_host=smtp2.hoster.example
bob login=bob7 incoming_host=store3.hoster.example
b@example.org alias=bob
"""


def servers(app: Application, address: str) -> list[tuple[str, str, str]]:
    answer = app.test_client().get(f"/mail/config-v1.1.xml?emailaddress={address}")
    assert answer.status_code == 200
    xml = etree.fromstring(answer.data)
    return [
        (s.tag, s.findtext("hostname") or "", s.findtext("username") or "")
        for s in xml.iter("incomingServer", "outgoingServer")
    ]


def test_keys_are_tried_in_their_order(make_app: Callable[..., Application]) -> None:
    app = make_app({"a.yaml": FILE.replace("KEYS", "address, localpart"), "logins.map": MAP})
    # The whole address before the local part; the hosts the line gives, the file's else.
    assert servers(app, "anna@example.org") == [
        ("incomingServer", "imap.example.org", "anna-full"),
        ("incomingServer", "pop.example.org", "anna-full"),
        ("outgoingServer", "smtp.example.org", "anna-full"),
    ]
    # A local part's line serves it in every domain of the provider.
    assert servers(app, "anna@other.example") == [
        ("incomingServer", "imap.other.example", "anna-local"),
        ("incomingServer", "pop.other.example", "anna-local"),
        ("outgoingServer", "smtp2.hoster.example", "anna-local"),
    ]
    assert servers(app, "BOB@other.example")[0] == (
        "incomingServer",
        "store3.hoster.example",
        "bob7",
    )


def test_a_miss_is_the_answer_without_a_lookup(make_app: Callable[..., Application]) -> None:
    app = make_app({"a.yaml": FILE.replace("KEYS", "localpart"), "logins.map": MAP})
    assert servers(app, "carol@example.net") == [
        ("incomingServer", "imap.example.net", "carol"),
        ("incomingServer", "pop.example.net", "carol@example.net"),
        ("outgoingServer", "smtp.example.net", "carol"),
    ]
    # The whole address is not a key here: anna@example.org is found by her local part.
    assert servers(app, "anna@example.org")[0][2] == "anna-local"
    # Without an address, nothing is looked up: the placeholders stay for the client.
    bare = app.test_client().get("/mail/config-v1.1.xml", headers={"Host": "autoconfig.x.example"})
    assert etree.fromstring(bare.data).findtext(".//username") == "%EMAILLOCALPART%"


def test_an_alias_finds_its_user(make_app: Callable[..., Application]) -> None:
    with_alias = FILE.replace("KEYS", "address, alias")
    app = make_app(
        {
            "a.yaml": with_alias,
            "logins.map": MAP.replace("alias=bob", "alias=bob@x.org") + "bob@x.org bob8\n",
        }
    )
    assert servers(app, "b@example.org")[0][2] == "bob8"
    assert servers(app, "bob@example.org")[0][2] == "bob"  # no line for it: the default


def test_a_missing_extra_is_a_clear_error(tmp_path: Path) -> None:
    """Without psycopg's pool or ldap3 (blocked as Python blocks a missing package:
    None in sys.modules), check names the extra to install, at the file's line."""
    servers = FILE.split("lookup:")[0].replace('["*"]', "[a.example]")
    (tmp_path / "sql.yaml").write_text(
        servers + 'lookup:\n  postgresql:\n    connection: "host=db"\n'
        '    query: "SELECT u AS login FROM t WHERE a = %(key)s"\n',
        encoding="utf-8",
    )
    (tmp_path / "ldap.yaml").write_text(
        servers.replace("a.example", "b.example") + "lookup:\n  ldap:\n"
        "    url: ldap://ldap.example\n    base: dc=example\n"
        '    filter: "(mail={key})"\n    login: uid\n',
        encoding="utf-8",
    )
    script = (
        "import sys; sys.modules['psycopg_pool'] = sys.modules['ldap3'] = None; "
        "from autoconf.cli import main; sys.exit(main(['check', sys.argv[1]]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 1, done.stdout + done.stderr
    lines = [line.replace(f"{tmp_path}/", "") for line in done.stdout.splitlines()]
    for file, kind, extra in (("sql", "postgresql", "sql"), ("ldap", "ldap", "ldap")):
        wanted = (
            f"{file}.yaml:8: lookup.{kind}: the {kind} source needs the {extra!r} extra, "
            f"which is not installed: pip install 'mail-autoconf[{extra}]'"
        )
        assert wanted in lines, lines
