"""``mail-autoconf import``: Thunderbird ISPDB XML to domain YAML (docs/cli.md#import).

Unit tests of the converter on small hand-written documents, the command through
``autoconf.cli.main``, and the round trip over the whole ISPDB corpus in
``../shared/ispdb``: what we serve for each imported file must be what the
original says, but for the differences docs/domain-files.md lists.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml
from lxml import etree

from autoconf import ispdb
from autoconf.cli import main
from autoconf.folder import load_file
from autoconf.registry import load_folder
from autoconf.render import autoconfig

# The corpus lives beside the project (/work/shared/ispdb for /work/main).
ISPDB = Path(__file__).resolve().parents[2] / "shared" / "ispdb"

SERVERS = """
    <incomingServer type="imap">
      <hostname>imap.example.com</hostname>
      <port>993</port>
      <socketType>SSL</socketType>
      <username>%EMAILADDRESS%</username>
      <authentication>password-cleartext</authentication>
    </incomingServer>
    <outgoingServer type="smtp">
      <hostname>smtp.example.com</hostname>
      <port>465</port>
      <socketType>SSL</socketType>
      <username>%EMAILADDRESS%</username>
      <authentication>password-cleartext</authentication>
    </outgoingServer>
"""


def document(provider: str = "", root: str = "", *, servers: str = SERVERS) -> str:
    """A clientConfig document for example.com; ``provider`` and ``root`` add elements."""
    return f"""<clientConfig version="1.1">
  <emailProvider id="example.com">
    <domain>example.com</domain>
    <displayName>Example Mail</displayName>
    <displayShortName>Example</displayShortName>
    {servers}
    {provider}
  </emailProvider>
  {root}
</clientConfig>"""


def server(
    kind: str = "imap",
    *,
    tag: str = "incomingServer",
    host: str = "mail.example.com",
    port: str = "993",
    socket: str = "SSL",
    username: str | None = "%EMAILADDRESS%",
    auth: tuple[str, ...] = ("password-cleartext",),
    extra: str = "",
) -> str:
    user = f"<username>{username}</username>" if username is not None else ""
    methods = "".join(f"<authentication>{a}</authentication>" for a in auth)
    return (
        f'<{tag} type="{kind}"><hostname>{host}</hostname><port>{port}</port>'
        f"<socketType>{socket}</socketType>{user}{methods}{extra}</{tag}>"
    )


def smtp(**options: Any) -> str:
    return server("smtp", tag="outgoingServer", port="465", **options)


def convert(xml: str) -> tuple[dict[str, Any], list[str]]:
    """The imported data (the YAML read back) and the warnings."""
    text, warnings = ispdb.convert(ispdb.parse(xml.encode()), "example.com.xml")
    data = yaml.safe_load(text)
    assert isinstance(data, dict)
    return data, warnings


def one_warning(warnings: list[str], *pieces: str) -> None:
    """Exactly one warning contains every piece."""
    found = [w for w in warnings if all(p in w for p in pieces)]
    assert len(found) == 1, f"{pieces} in {warnings}"


# ---------------------------------------------------------------------------
# The mapping


def test_a_clean_document_maps_every_field_without_warnings(tmp_path: Path) -> None:
    xml = document(
        provider="""
        <domain>example.net</domain>
        <incomingServer type="pop3">
          <hostname>pop.example.com</hostname><port>110</port>
          <socketType>STARTTLS</socketType><username>%EMAILLOCALPART%</username>
          <authentication>password-encrypted</authentication>
          <pop3>
            <leaveMessagesOnServer>true</leaveMessagesOnServer>
            <daysToLeaveMessagesOnServer>14</daysToLeaveMessagesOnServer>
            <downloadOnBiff>false</downloadOnBiff>
          </pop3>
        </incomingServer>
        <outgoingServer type="smtp">
          <hostname>smtp.example.com</hostname><port>25</port><socketType>plain</socketType>
          <username>%EMAILLOCALPART%.%EMAILDOMAIN%</username>
          <authentication>client-IP-address</authentication>
        </outgoingServer>
        <documentation url="https://example.com/help">
          <descr lang="en">Setting up mail</descr>
          <descr lang="de">E-Mail einrichten</descr>
        </documentation>""",
        root="""
        <webMail><loginPage url="https://webmail.example.com/"/></webMail>
        <oAuth2>
          <issuer>login.example.com</issuer><scope>mail offline_access</scope>
          <authURL>https://login.example.com/auth</authURL>
          <tokenURL>https://login.example.com/token</tokenURL>
        </oAuth2>""",
    )
    data, warnings = convert(xml)
    assert warnings == [], warnings
    assert data == {
        "provider": {"id": "example.com", "name": "Example Mail", "short_name": "Example"},
        "domains": ["example.com", "example.net"],
        "incoming": [
            {
                "type": "imap",
                "host": "imap.example.com",
                "port": 993,
                "security": "ssl",
                "auth": "password-cleartext",
                "username": "%EMAILADDRESS%",
            },
            {
                "type": "pop3",
                "host": "pop.example.com",
                "port": 110,
                "security": "starttls",
                "auth": "password-encrypted",
                "username": "%EMAILLOCALPART%",
                "pop3": {
                    "leave_messages_on_server": True,
                    "days_to_leave_messages_on_server": 14,
                    "download_on_biff": False,
                },
            },
        ],
        "outgoing": [
            {
                "type": "smtp",
                "host": "smtp.example.com",
                "port": 465,
                "security": "ssl",
                "auth": "password-cleartext",
                "username": "%EMAILADDRESS%",
            },
            {
                "type": "smtp",
                "host": "smtp.example.com",
                "port": 25,
                "security": "none",
                "auth": "client-IP-address",
                "username": "%EMAILLOCALPART%.%EMAILDOMAIN%",
            },
        ],
        "webmail": {"url": "https://webmail.example.com/"},
        "documentation": [
            {
                "url": "https://example.com/help",
                "text": {"en": "Setting up mail", "de": "E-Mail einrichten"},
            }
        ],
        "oauth2": {
            "issuer": "login.example.com",
            "scope": "mail offline_access",
            "auth_url": "https://login.example.com/auth",
            "token_url": "https://login.example.com/token",
        },
    }


def test_the_yaml_names_its_source_and_passes_check(tmp_path: Path) -> None:
    text, _ = ispdb.convert(ispdb.parse(document().encode()), "example.com.xml")
    assert text.splitlines()[0].startswith("# Source: example.com.xml (Thunderbird ISPDB)")
    path = tmp_path / "example.com.yaml"
    path.write_text(text, encoding="utf-8")
    provider, problems = load_file(path)
    assert provider is not None and not problems, [str(p) for p in problems]


def test_the_port_is_always_written_even_when_it_is_our_default() -> None:
    data, _ = convert(document())
    assert [s["port"] for s in data["incoming"] + data["outgoing"]] == [993, 465]


@pytest.mark.parametrize(
    ("socket", "security", "warned"),
    [
        ("SSL", "ssl", False),
        ("STARTTLS", "starttls", False),
        ("plain", "none", False),
        ("ssl", "ssl", True),
    ],
)
def test_socket_types(socket: str, security: str, warned: bool) -> None:
    data, warnings = convert(document(servers=server(socket=socket) + smtp()))
    assert data["incoming"][0]["security"] == security
    assert bool(warnings) == warned, warnings


@pytest.mark.parametrize(
    ("given", "written", "warned"),
    [
        ("password-cleartext", "password-cleartext", False),
        ("password-encrypted", "password-encrypted", False),
        ("plain", "password-cleartext", True),  # the first file format's names
        ("secure", "password-encrypted", True),
        ("OAuth2", "OAuth2", False),
        ("oauth2", "OAuth2", True),
        ("NTLM", "NTLM", False),
        ("GSSAPI", "GSSAPI", False),
        ("TLS-client-cert", "TLS-client-cert", False),
    ],
)
def test_authentication_names(given: str, written: str, warned: bool) -> None:
    data, warnings = convert(document(servers=server(auth=(given,)) + smtp()))
    assert data["incoming"][0]["auth"] == written
    if warned:
        one_warning(warnings, f"authentication {given!r} written as {written!r}")
    else:
        assert warnings == []


def test_several_methods_keep_their_order() -> None:
    data, _ = convert(document(servers=server(auth=("OAuth2", "password-cleartext")) + smtp()))
    assert data["incoming"][0]["auth"] == ["OAuth2", "password-cleartext"]


def test_unknown_and_misplaced_methods_are_left_out() -> None:
    incoming = server(auth=("smtp-after-pop", "none", "password-encrypted"))
    outgoing = smtp(auth=("none", "client-IP-address"))
    data, warnings = convert(document(servers=incoming + outgoing))
    assert data["incoming"][0]["auth"] == "password-encrypted"
    assert data["outgoing"][0]["auth"] == ["none", "client-IP-address"]
    one_warning(warnings, "incomingServer[1]", "'smtp-after-pop' is not one we know; left out")
    one_warning(warnings, "incomingServer[1]", "'none' is only for outgoing servers")


def test_a_server_with_no_usable_method_gets_password_cleartext() -> None:
    incoming = server(auth=("kerberos-v4",)) + server(port="994", auth=())
    data, warnings = convert(document(servers=incoming + smtp()))
    assert [s["auth"] for s in data["incoming"]] == ["password-cleartext"] * 2
    one_warning(warnings, "incomingServer[1]", "none of its <authentication> values is usable")
    one_warning(warnings, "incomingServer[2]", "no <authentication>: password-cleartext is used")


@pytest.mark.parametrize("kind", ["exchange", "ews", "owa", "graph", "jmap", "activesync"])
def test_server_types_we_do_not_serve_are_left_out(kind: str) -> None:
    unserved = f'<incomingServer type="{kind}"><url>https://x.example.com/</url></incomingServer>'
    data, warnings = convert(document(servers=server() + unserved + smtp()))
    assert [s["type"] for s in data["incoming"]] == ["imap"]
    assert warnings == [
        f"incomingServer[2]: server type {kind!r} is not served (only imap and pop3); left out"
    ]


def test_an_outgoing_server_of_an_incoming_type_is_left_out() -> None:
    data, warnings = convert(document(servers=server() + smtp() + server(tag="outgoingServer")))
    assert len(data["outgoing"]) == 1
    one_warning(warnings, "outgoingServer[2]", "'imap' is not served (only smtp)")


def test_no_incoming_server_left_is_a_failure() -> None:
    servers = '<incomingServer type="exchange"/>' + smtp()
    with pytest.raises(ispdb.ImportFailed, match="no IMAP or POP3 server left"):
        convert(document(servers=servers))


# ---------------------------------------------------------------------------
# Corrections


@pytest.mark.parametrize(
    ("given", "fixed"),
    [
        ("%EMAILADDRESS", "%EMAILADDRESS%"),
        ("%EMAILLOCALPART", "%EMAILLOCALPART%"),
        ("%EMAILADDRES%", "%EMAILADDRESS%"),
        ("%emailaddress%", "%EMAILADDRESS%"),
        ("%EMAILLOCALPART%@%EMAILDOMAIN", "%EMAILLOCALPART%@%EMAILDOMAIN%"),
    ],
)
def test_placeholder_typos_in_usernames_are_corrected(given: str, fixed: str) -> None:
    data, warnings = convert(document(servers=server(username=given) + smtp()))
    assert data["incoming"][0]["username"] == fixed
    assert warnings and all("typo" in w and "corrected" in w for w in warnings), warnings


def test_placeholder_typos_in_hosts_and_urls_are_corrected() -> None:
    servers = server(host="mail.%EMAILDOMAIN") + smtp()
    root = '<webMail><loginPage url="https://mail.example.com/?u=%EMAILADDRESS"/></webMail>'
    data, warnings = convert(document(root=root, servers=servers))
    assert data["incoming"][0]["host"] == "mail.%EMAILDOMAIN%"
    assert data["webmail"]["url"] == "https://mail.example.com/?u=%EMAILADDRESS%"
    assert len([w for w in warnings if "typo" in w]) == 2


def test_a_placeholder_beyond_repair_leaves_the_server_out() -> None:
    servers = server() + server(username="%SOMETHINGELSE%") + smtp()
    data, warnings = convert(document(servers=servers))
    assert len(data["incoming"]) == 1
    one_warning(warnings, "incomingServer[2]", "unknown placeholder", "server left out")


def test_url_escapes_are_no_placeholders() -> None:
    url = "https://example.com/Ops%C3%A6tning-%28OX%29"
    data, warnings = convert(
        document(f'<documentation url="{url}"><descr>x</descr></documentation>')
    )
    assert data["documentation"][0]["url"] == url
    one_warning(warnings, "without lang read as English")


@pytest.mark.parametrize(
    ("given", "written"),
    [("IMAP.Example.COM", "imap.example.com"), ("imap.example.com.", "imap.example.com")],
)
def test_hosts_are_written_lower_case_without_a_trailing_dot(given: str, written: str) -> None:
    data, warnings = convert(document(servers=server(host=given) + smtp()))
    assert data["incoming"][0]["host"] == written
    assert warnings == [f"incomingServer[1]: hostname {given!r} written as {written!r}"]


def test_white_space_around_values_is_no_change() -> None:
    servers = server(host="  imap.example.com\n", port=" 993\n ", socket=" SSL ") + smtp()
    data, warnings = convert(document(servers=servers))
    assert data["incoming"][0]["port"] == 993
    assert data["incoming"][0]["host"] == "imap.example.com"
    assert warnings == []


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("host", "imap_x.example.com", "is not a valid host name"),
        ("host", "%EMAILLOCALPART%.example.com", "hostname"),
        ("port", "99999", "is not a port number"),
        ("port", "imap", "is not a port number"),
        ("socket", "TLS", "socketType 'TLS' is not one of SSL, STARTTLS, plain"),
    ],
)
def test_an_unusable_server_is_left_out(field: str, value: str, message: str) -> None:
    bad = server(**{field: value})
    data, warnings = convert(document(servers=server() + bad + smtp()))
    assert len(data["incoming"]) == 1
    one_warning(warnings, "incomingServer[2]", message, "server left out")


def test_an_outgoing_server_without_username_takes_the_incoming_one() -> None:
    servers = server(username="%EMAILLOCALPART%") + smtp(username=None)
    data, warnings = convert(document(servers=servers))
    assert data["outgoing"][0]["username"] == "%EMAILLOCALPART%"
    one_warning(warnings, "outgoingServer[1]", "no <username>", "first incoming server's")


def test_domains_are_normalised_deduplicated_and_checked() -> None:
    provider = """<domain>müller.example</domain><domain>EXAMPLE.com</domain>
        <domain>bad_domain.example</domain><domain>*</domain>"""
    data, warnings = convert(document(provider))
    assert data["domains"] == ["example.com", "xn--mller-kva.example"]
    one_warning(warnings, "domain[2]", "'müller.example' written as 'xn--mller-kva.example'")
    one_warning(warnings, "domain[3]", "listed twice")
    one_warning(warnings, "domain[4]", "'bad_domain.example' left out")
    one_warning(warnings, "domain[5]", "'*' left out")  # a catch-all only by intent


def test_the_provider_id_is_a_host_name_or_left_out() -> None:
    data, warnings = convert(document().replace('id="example.com"', 'id="OXCloud-EU"'))
    assert data["provider"]["id"] == "oxcloud-eu"
    one_warning(warnings, "id 'OXCloud-EU' written as 'oxcloud-eu'")
    data, warnings = convert(document().replace('id="example.com"', 'id="Example Mail"'))
    assert "id" not in data["provider"]
    one_warning(warnings, "id left out", "the first domain is the id")


def test_display_name_short_is_a_known_typo() -> None:
    xml = document().replace("displayShortName>", "displayNameShort>")
    data, warnings = convert(xml)
    assert data["provider"]["short_name"] == "Example"
    assert warnings == ["emailProvider: typo <displayNameShort> read as <displayShortName>"]


def test_documentation_texts() -> None:
    provider = """
        <documentation url="https://example.com/a"><descr lang="EN-us">A</descr></documentation>
        <documentation url="https://example.com/b"/>
        <documentation url="http://example.com/c"><descr lang="fr">C</descr>
          <descr lang="fr">again</descr><descr lang="de"> </descr></documentation>
        <documentation url="ftp://example.com/d"><descr>D</descr></documentation>"""
    data, warnings = convert(document(provider))
    assert data["documentation"] == [
        {"url": "https://example.com/a", "text": {"en-us": "A"}},
        {"url": "https://example.com/b", "text": {"en": "https://example.com/b"}},
        {"url": "http://example.com/c", "text": {"fr": "C"}},  # http: `check` warns
    ]
    one_warning(warnings, "documentation[1]", "lang 'EN-us' written as 'en-us'")
    one_warning(warnings, "documentation[2]", "no <descr>: the URL is its English text")
    one_warning(warnings, "documentation[3]", "a second text in 'fr'")
    one_warning(warnings, "documentation[3]", "it is empty")
    one_warning(warnings, "documentation[4]", "left out", "is not an https:// URL")


def test_a_misplaced_instruction_with_a_url_is_documentation() -> None:
    provider = """<instruction url="https://example.com/help"><descr lang="en">Help</descr>
        </instruction><instruction>Enable IMAP first</instruction>"""
    data, warnings = convert(document(provider))
    assert data["documentation"] == [{"url": "https://example.com/help", "text": {"en": "Help"}}]
    one_warning(warnings, "instruction[1]", "read as <documentation>")
    one_warning(warnings, "instruction[2]", "misplaced, and our format has no key for it")


def test_things_without_a_key_are_left_out_each_with_a_warning() -> None:
    provider = """
        <enable visiturl="https://example.com/enable">
          <instruction>Enable IMAP</instruction></enable>
        <inputField key="USERNAME" label="User">x</inputField>"""
    root = """<webMail><loginPage url="https://mail.example.com/"/>
          <loginPageInfo url="https://mail.example.com/"><username>x</username></loginPageInfo>
        </webMail><clientConfigUpdate url="https://example.com/config.xml"/>"""
    servers = (
        server(extra="<pop3><checkInterval minutes='15'/></pop3><password>secret</password>")
        + server("pop3", extra="<pop3><checkInterval minutes='15'/></pop3>")
        + smtp(
            extra="<restriction>client-IP-address</restriction><addThisServer>true</addThisServer>"
        )
    )
    data, warnings = convert(document(provider, root, servers=servers))
    assert data["webmail"] == {"url": "https://mail.example.com/"}
    assert "pop3" not in data["incoming"][1]
    for where, tag in [
        ("emailProvider", "enable"),
        ("emailProvider", "inputField"),
        ("webMail", "loginPageInfo"),
        ("clientConfig", "clientConfigUpdate"),
        ("incomingServer[1]", "pop3"),  # pop3 options on an IMAP server
        ("incomingServer[2].pop3", "checkInterval"),
        ("outgoingServer[1]", "restriction"),
        ("outgoingServer[1]", "addThisServer"),
    ]:
        one_warning(warnings, f"{where}: <{tag}> left out: our format has no key for it")
    one_warning(warnings, "<password> left out: a domain file never carries a password")
    assert "secret" not in yaml.safe_dump(data)


def test_oauth2_needs_all_four_values() -> None:
    root = "<oAuth2><issuer>login.example.com</issuer><scope>mail</scope></oAuth2>"
    data, warnings = convert(document(root=root))
    assert "oauth2" not in data
    one_warning(warnings, "oAuth2: <authURL>: missing; the whole <oAuth2> left out")


def test_misplaced_webmail_and_oauth2_are_read() -> None:
    provider = """<webMail><loginPage url="https://mail.example.com/"/></webMail>
        <oAuth2><issuer>login.example.com</issuer><scope>mail</scope>
        <authURL>https://login.example.com/a</authURL>
        <tokenURL>https://login.example.com/t</tokenURL></oAuth2>"""
    data, warnings = convert(document(provider))
    assert data["webmail"] == {"url": "https://mail.example.com/"}
    assert data["oauth2"]["issuer"] == "login.example.com"
    one_warning(warnings, "webMail: misplaced inside <emailProvider>")
    one_warning(warnings, "oAuth2: misplaced inside <emailProvider>")


def test_calendar_and_address_book() -> None:
    root = """<calendar type="caldav"><username>%EMAILADDRESS%</username>
          <authentication system="http">basic</authentication>
          <serverURL>https://dav.example.com/cal/</serverURL></calendar>
        <addressBook type="carddav"><serverURL>https://dav.example.com/card/</serverURL>
        </addressBook>"""
    data, warnings = convert(document(root=root))
    assert data["calendar"] == {"url": "https://dav.example.com/cal/", "username": "%EMAILADDRESS%"}
    assert data["addressbook"] == {"url": "https://dav.example.com/card/"}
    assert warnings == []


def test_repeated_elements_keep_the_first() -> None:
    servers = server(extra="<hostname>other.example.com</hostname>", auth=("NTLM", "ntlm")) + smtp()
    xml = document("<displayNameShort>Ex</displayNameShort>", servers=servers)
    xml = xml.replace("</clientConfig>", '<emailProvider id="second.example"/></clientConfig>')
    data, warnings = convert(xml)
    assert data["incoming"][0]["host"] == "mail.example.com"
    assert data["incoming"][0]["auth"] == "NTLM"
    assert data["provider"]["short_name"] == "Example"
    one_warning(warnings, "incomingServer[1]: <hostname> left out: more than one <hostname>")
    one_warning(warnings, "incomingServer[1]: authentication 'ntlm' is listed twice")
    one_warning(warnings, "<displayNameShort> left out: <displayShortName> is given too")
    one_warning(warnings, "<emailProvider> left out: only the first <emailProvider> is imported")


@pytest.mark.parametrize(
    ("xml", "reason"),
    [
        ("<autoconfig/>", "the root element is <autoconfig>, not <clientConfig>"),
        ("<clientConfig/>", "no <emailProvider>"),
        (document().replace("<domain>example.com</domain>", ""), "no usable <domain>"),
        (document(servers=server()), "no SMTP server left to import"),
    ],
)
def test_documents_that_cannot_become_a_domain_file(xml: str, reason: str) -> None:
    with pytest.raises(ispdb.ImportFailed, match=re.escape(reason)):
        convert(xml)


# ---------------------------------------------------------------------------
# Hostile XML


def test_entities_are_not_expanded(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET", encoding="utf-8")
    xml = f"""<?xml version="1.0"?>
<!DOCTYPE clientConfig [
  <!ENTITY boom "BOOM">
  <!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY file SYSTEM "{secret.as_uri()}">
]>
{document().replace("Example Mail", "&boom;&lol2;&file;")}"""
    text, warnings = ispdb.convert(ispdb.parse(xml.encode()), "x.xml")
    for expanded in ("BOOM", "lollol", "TOP-SECRET"):
        assert expanded not in text
    assert not re.search(r"^  name:", text, re.MULTILINE)  # nothing left of the name
    for name in ("boom", "lol2", "file"):
        one_warning(warnings, f"entity reference &{name}; left out")


def test_an_external_dtd_is_neither_fetched_nor_needed() -> None:
    # Port 9 (discard) on this host: a fetch would fail or hang; neither happens.
    xml = document().replace("Example Mail", "Example &undefined; Mail")
    xml = f'<!DOCTYPE clientConfig SYSTEM "http://127.0.0.1:9/config.dtd">\n{xml}'
    root = ispdb.parse(xml.encode())
    assert root.getroottree().docinfo.system_url == "http://127.0.0.1:9/config.dtd"
    data, warnings = convert(xml)
    assert data["provider"]["name"] == "Example"  # the text before the reference
    one_warning(warnings, "entity reference &undefined; left out")


# ---------------------------------------------------------------------------
# The command


def write_sources(folder: Path, **documents: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, xml in documents.items():
        (folder / f"{name}.xml").write_text(xml, encoding="utf-8")


def test_import_one_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_sources(tmp_path / "in", example=document())
    out = tmp_path / "out"
    assert main(["import", str(tmp_path / "in" / "example.xml"), "--out", str(out)]) == 0
    assert [p.name for p in out.iterdir()] == ["example.com.yaml"]
    err = capsys.readouterr().err
    assert "1 file: 1 imported, 0 skipped (exists; --force overwrites), 0 failed, 0 warnings" in err
    assert "Importing" not in err  # a progress bar only for a folder


def test_import_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = document().replace("example.com", "example.org")
    typo = document(servers=server(username="%EMAILADDRESS") + smtp())
    typo = typo.replace("example.com", "typo.example")
    write_sources(
        tmp_path / "in", a=document(), b=other, c=typo, broken="<clientConfig><oops></clientConfig>"
    )
    (tmp_path / "in" / "notes.txt").write_text("not XML", encoding="utf-8")
    out = tmp_path / "out"
    assert main(["import", str(tmp_path / "in"), "--out", str(out)]) == 1  # one failed
    names = sorted(p.name for p in out.iterdir())
    assert names == ["example.com.yaml", "example.org.yaml", "typo.example.yaml"]
    assert not load_folder(out).errors
    err = capsys.readouterr().err
    assert "Importing" in err  # the progress bar's label, on stderr
    assert re.search(r"broken\.xml: error: not well-formed XML", err)
    assert f"{tmp_path / 'in' / 'c.xml'}: warning: incomingServer[1]: typo" in err
    assert "4 files: 3 imported, 0 skipped (exists; --force overwrites), 1 failed, 1 warning" in err


def test_no_overwrite_without_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_sources(tmp_path / "in", example=document())
    out = tmp_path / "out"
    out.mkdir()
    existing = out / "example.com.yaml"
    existing.write_text("# mine\n", encoding="utf-8")
    assert main(["import", str(tmp_path / "in"), "--out", str(out)]) == 1
    assert existing.read_text(encoding="utf-8") == "# mine\n"
    err = capsys.readouterr().err
    assert f"skipped: {existing} exists" in err
    assert "0 imported, 1 skipped" in err

    assert main(["import", str(tmp_path / "in"), "--out", str(out), "--force"]) == 0
    assert existing.read_text(encoding="utf-8").startswith("# Source: example.xml")
    assert [p.name for p in out.iterdir()] == ["example.com.yaml"]  # no temporary left


def test_sources_sharing_an_id_are_named_after_their_files(tmp_path: Path) -> None:
    eu = document().replace("<domain>example.com", "<domain>example.eu")
    write_sources(tmp_path / "in", **{"example.com": document(), "example.eu": eu})
    assert main(["import", str(tmp_path / "in"), "--out", str(tmp_path / "out")]) == 0
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["example.com.yaml", "example.eu.yaml"]


def test_usage_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["import", str(tmp_path / "empty"), "--out", str(tmp_path / "out")]) == 2
    write_sources(tmp_path / "in", example=document())
    (tmp_path / "file").write_text("", encoding="utf-8")
    assert main(["import", str(tmp_path / "in"), "--out", str(tmp_path / "file")]) == 2
    assert main(["import", str(tmp_path / "missing")]) == 2  # click: path does not exist


# ---------------------------------------------------------------------------
# The round trip over the ISPDB corpus
#
# Both documents are read the same way (as a client reads them: values with
# white space stripped); then the documented differences are applied to the
# original's reading, and only to it. Each numbered step below is an item of
# docs/domain-files.md, "Importing Thunderbird ISPDB files".

View = dict[str, Any]
SERVED_TYPES = {"incomingServer": ("imap", "pop3"), "outgoingServer": ("smtp",)}
POP3_OPTIONS = ("leaveMessagesOnServer", "daysToLeaveMessagesOnServer", "downloadOnBiff")
LEGACY_AUTH = {"plain": "password-cleartext", "secure": "password-encrypted"}
TYPO = re.compile(r"%(EMAILADDRESS|EMAILLOCALPART|EMAILDOMAIN)(?!%)")


def text_of(element: etree._Element | None) -> str | None:
    return None if element is None else (element.text or "").strip()


def read_server(element: etree._Element) -> View:
    pop3 = element.find("pop3")
    options = (
        {c.tag: text_of(c) for c in pop3 if isinstance(c.tag, str)} if pop3 is not None else {}
    )
    return {
        "type": element.get("type"),
        "hostname": text_of(element.find("hostname")),
        "port": text_of(element.find("port")),
        "socketType": text_of(element.find("socketType")),
        "authentication": [text_of(a) for a in element.findall("authentication")],
        "username": text_of(element.find("username")),
        "pop3": options,
    }


def read_client_config(root: etree._Element) -> View:
    """What a client reads of a clientConfig document, field by field."""
    provider = root.find("emailProvider")
    assert provider is not None
    login = root.find("webMail/loginPage")
    oauth2 = root.find("oAuth2")
    docs = [
        # <instruction url> is read too: step 9 decides what becomes of it.
        (e.tag, e.get("url"), [(d.get("lang"), text_of(d)) for d in e.findall("descr")])
        for e in provider
        if e.tag == "documentation" or (e.tag == "instruction" and e.get("url"))
    ]
    return {
        "id": provider.get("id"),
        "domains": [text_of(d) for d in provider.findall("domain")],
        "displayName": text_of(provider.find("displayName")),
        "displayShortName": text_of(provider.find("displayShortName")),
        "displayNameShort": text_of(provider.find("displayNameShort")),
        "incoming": [read_server(s) for s in provider.findall("incomingServer")],
        "outgoing": [read_server(s) for s in provider.findall("outgoingServer")],
        "documentation": docs,
        "webMail": None if login is None else login.get("url"),
        "oAuth2": None
        if oauth2 is None
        else {c.tag: text_of(c) for c in oauth2 if isinstance(c.tag, str)},
    }


def deep_map(value: Any, change: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return change(value)
    if isinstance(value, list):
        return [deep_map(v, change) for v in value]
    if isinstance(value, tuple):
        return tuple(deep_map(v, change) for v in value)
    if isinstance(value, dict):
        return {k: deep_map(v, change) for k, v in value.items()}
    return value


def host_name(host: str | None) -> str | None:
    return None if host is None else host.lower().removesuffix(".")


def expected_server(server: View, kind: str, first_login: str | None) -> View:
    methods = []
    for raw in server["authentication"]:
        name = LEGACY_AUTH.get(raw, raw)  # 3. legacy names
        if name in ("none", "client-IP-address") and kind == "incomingServer":
            continue  # 3. outgoing-only methods on an incoming server
        if name not in methods:
            methods.append(name)
    return server | {
        "hostname": host_name(server["hostname"]),  # 4.
        "authentication": methods or ["password-cleartext"],  # 3.
        "username": server["username"] or first_login,  # 5.
        "pop3": {k: v for k, v in server["pop3"].items() if k in POP3_OPTIONS},  # 6.
    }


def plaintext_rule(servers: list[View]) -> list[View]:
    secure = [s for s in servers if s["socketType"] != "plain"]
    return secure or servers


def expected_view(original: View, request_domain: str) -> View:
    """The original's reading with the documented differences applied (docs, numbered)."""
    view = deep_map(original, lambda s: TYPO.sub(r"%\1%", s))  # 2. typos
    # What the request tells is filled in, in the original as in our answer.
    view = deep_map(view, lambda s: s.replace("%EMAILDOMAIN%", request_domain))
    servers: dict[str, list[View]] = {}
    for key, kind in (("incoming", "incomingServer"), ("outgoing", "outgoingServer")):
        kept = [s for s in view[key] if s["type"] in SERVED_TYPES[kind]]  # 1. server types
        first_login = servers["incoming"][0]["username"] if servers else None
        kept = [expected_server(s, kind, first_login) for s in kept]
        servers[key] = plaintext_rule(kept)  # 10.
    domains = list(dict.fromkeys(d.lower() for d in view["domains"]))  # 7.
    if len(domains) > autoconfig.MAX_LISTED_DOMAINS:
        domains = [request_domain]  # 7. a long list names the requested domain only
    name = view["displayName"] or view["id"]  # 8.
    short = view["displayShortName"] or view["displayNameShort"] or name[:12]  # 8.
    docs = [
        (url, [(lang or "en", text) for lang, text in descr] or [("en", url)])  # 9.
        for _tag, url, descr in view["documentation"]
    ]
    return view | {
        "id": view["id"].lower(),  # 4.
        "domains": domains,
        "displayName": name,
        "displayShortName": short,
        "displayNameShort": None,
        "incoming": servers["incoming"],
        "outgoing": servers["outgoing"],
        "documentation": [("documentation", url, descr) for url, descr in docs],
    }


def compare(source: str, expected: View, served: View) -> list[str]:
    """One message per differing field: FILE: field: expected ..., served ..."""
    problems = []
    for field in expected:
        if field in ("incoming", "outgoing"):
            continue
        if expected[field] != served[field]:
            problems.append(
                f"{source}: {field}: expected {expected[field]!r}, served {served[field]!r}"
            )
    for kind in ("incoming", "outgoing"):
        want, got = expected[kind], served[kind]
        if len(want) != len(got):
            problems.append(f"{source}: {kind}: expected {len(want)} servers, served {len(got)}")
            continue
        for index, (a, b) in enumerate(zip(want, got, strict=True)):
            for field in a:
                if a[field] != b[field]:
                    where = f"{kind}[{index}].{field}"
                    problems.append(
                        f"{source}: {where}: expected {a[field]!r}, served {b[field]!r}"
                    )
    return problems


def sources_by_output(out: Path) -> dict[str, Path]:
    """Source file name -> the domain file imported from it (its first line says)."""
    found = {}
    for path in sorted(out.glob("*.yaml")):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        match = re.match(r"# Source: (.+) \(Thunderbird ISPDB\)", first)
        assert match, f"{path.name}: no source line"
        found[match.group(1)] = path
    return found


EA = "%EMAILADDRESS%"


def _replaced(old: str, new: str, text: str) -> str:
    return text.replace(old, new)


@pytest.mark.skipif(not ISPDB.is_dir(), reason=f"ISPDB corpus not found at {ISPDB}")
def test_round_trip_over_the_ispdb_corpus(tmp_path: Path) -> None:
    """Every ISPDB file imports, `check` accepts it, and we serve what it says.

    Rendered with no address and the first domain, as for a client that asks
    with the domain only (Thunderbird for Android): %EMAILADDRESS% and
    %EMAILLOCALPART% stay in the answer, so the comparison sees which placeholder
    each field uses (a filled-in address would hide a typo or a swapped
    placeholder), and only %EMAILDOMAIN% is filled, in the original too (for an
    IDN domain, the domain part of %EMAILADDRESS% too).
    """
    sources = sorted(ISPDB.glob("*.xml"))
    out = tmp_path / "domains"
    assert ispdb.import_main(ISPDB, out, force=False) == 0

    result = load_folder(out)
    assert not result.errors, "\n".join(map(str, result.errors))
    providers = {p.file: p for p in result.providers}
    outputs = sources_by_output(out)
    assert sorted(outputs) == [s.name for s in sources]

    problems = []
    for source in sources:
        provider = providers[str(outputs[source.name])]
        domain = provider.concrete_domains[0]
        body = autoconfig.render(autoconfig.compile_provider(provider), None, domain)
        served = read_client_config(etree.fromstring(body))
        original = read_client_config(ispdb.parse(source.read_bytes()))
        wanted = expected_view(original, domain)
        if "xn--" in domain:  # 11. %EMAILADDRESS% is %EMAILLOCALPART%@ an IDN domain
            whole = f"%EMAILLOCALPART%@{domain}"
            wanted = deep_map(wanted, partial(_replaced, EA, whole))
        problems += compare(source.name, wanted, served)
    assert not problems, "\n".join(problems)
