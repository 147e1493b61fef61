"""model: a domain file becomes a Provider with the values and defaults of docs/domain-files.md."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from autoconf import yamlio
from autoconf.domain_file import build_provider
from autoconf.errors import Problem
from autoconf.folder import load_file
from autoconf.model import (
    DEFAULT_PORTS,
    Auth,
    DavService,
    Documentation,
    MobileConfig,
    OAuth2,
    Pop3Options,
    Provider,
    Security,
    Server,
    ServerType,
)
from tests.helpers import SPEC_DEFAULT_PORTS

# A file with every key (docs/domain-files.md#every-key), as first written for the contract.
SPEC_EXAMPLE = """\
# domains/example.com.yaml
provider:
  id: example.com            # emailProvider id; hostname syntax; default: first domain
  name: Example Mail         # displayName; default: id
  short_name: Example        # displayShortName; default: name, cut to 12 characters
domains:                     # at least one; IDN allowed (stored as A-labels); "*.example.com" matches any subdomain
  - example.com
  - example.net
incoming:                    # ordered by preference; the first is the one clients pick
  - type: imap               # imap | pop3
    host: imap.example.com   # may use %EMAILDOMAIN%
    port: 993                # optional; default from type and security (table below)
    security: ssl            # ssl (implicit TLS) | starttls | none
    auth: password-cleartext # one value or a list, in preference order
    username: "%EMAILADDRESS%"   # default; %EMAILLOCALPART% and %EMAILDOMAIN% also allowed
  - type: pop3
    host: pop.example.com
    security: ssl
    pop3:                    # only on pop3 servers
      leave_messages_on_server: true
      days_to_leave_messages_on_server: 14
      download_on_biff: true
outgoing:                    # ordered by preference; at least one
  - type: smtp
    host: smtp.example.com
    security: starttls       # port defaults to 587
calendar:    {url: "https://dav.example.com/cal/%EMAILADDRESS%/", username: "%EMAILADDRESS%"}
addressbook: {url: "https://dav.example.com/card/%EMAILADDRESS%/"}
activesync:  {url: "https://eas.example.com/Microsoft-Server-ActiveSync"}
webmail:     {url: "https://webmail.example.com/"}
documentation:
  - url: https://example.com/help/mail
    text: {en: "Setting up mail", de: "E-Mail einrichten"}
oauth2:                      # optional; emitted where the format has a place for it
  issuer: login.example.com
  scope: "https://mail.example.com/ offline_access"
  auth_url: https://login.example.com/oauth2/authorize
  token_url: https://login.example.com/oauth2/token
mobileconfig:
  identifier: com.example.mail    # reverse-DNS prefix of the Apple profile; default from provider.id
  organization: Example Ltd
"""  # noqa: E501 -- its long comment lines, kept as written

MINIMAL_SERVERS = """\
incoming:
  - type: imap
    host: imap.example.com
    security: ssl
outgoing:
  - type: smtp
    host: smtp.example.com
    security: starttls
"""


def build(text: str, base_dir: Path = Path(".")) -> tuple[Provider | None, list[Problem]]:
    tree, problems = yamlio.load(text, "test.yaml")
    assert problems == [], [str(p) for p in problems]
    return build_provider(tree, "test.yaml", base_dir)


def provider_of(text: str, base_dir: Path = Path(".")) -> Provider:
    provider, problems = build(text, base_dir)
    assert [str(p) for p in problems] == []
    assert provider is not None
    return provider


def with_domains(*domains: str, extra: str = "") -> str:
    listed = "".join(f'  - "{d}"\n' for d in domains)
    return f"domains:\n{listed}{MINIMAL_SERVERS}{extra}"


def servers_yaml(kind: str, entries: list[tuple[str, str]]) -> str:
    """``incoming:`` or ``outgoing:`` with (type, security) servers, hosts numbered."""
    out = f"{kind}:\n"
    for index, (server_type, security) in enumerate(entries):
        out += f"  - type: {server_type}\n    host: s{index}.example.com\n"
        out += f"    security: {security}\n"
    return out


# -- the example with every key, key by key -----------------------------------------------------


@pytest.fixture(scope="module")
def spec_provider() -> Provider:
    return provider_of(SPEC_EXAMPLE)


def test_spec_example_is_valid_and_clean() -> None:
    provider, problems = build(SPEC_EXAMPLE)
    assert provider is not None
    assert [str(p) for p in problems] == []


def test_spec_example_provider_block(spec_provider: Provider) -> None:
    assert spec_provider.id == "example.com"
    assert spec_provider.name == "Example Mail"
    assert spec_provider.short_name == "Example"
    assert spec_provider.domains == ("example.com", "example.net")
    assert spec_provider.file == "test.yaml"


def test_spec_example_incoming(spec_provider: Provider) -> None:
    imap, pop3 = spec_provider.incoming
    assert imap == Server(
        type=ServerType.IMAP,
        host="imap.example.com",
        port=993,
        security=Security.SSL,
        auth=(Auth.PASSWORD_CLEARTEXT,),
        username="%EMAILADDRESS%",
        pop3=None,
    )
    assert pop3 == Server(
        type=ServerType.POP3,
        host="pop.example.com",
        port=995,
        security=Security.SSL,
        auth=(Auth.PASSWORD_CLEARTEXT,),
        username="%EMAILADDRESS%",
        pop3=Pop3Options(
            leave_messages_on_server=True,
            days_to_leave_messages_on_server=14,
            download_on_biff=True,
        ),
    )


def test_spec_example_outgoing(spec_provider: Provider) -> None:
    assert spec_provider.outgoing == (
        Server(
            type=ServerType.SMTP,
            host="smtp.example.com",
            port=587,
            security=Security.STARTTLS,
            auth=(Auth.PASSWORD_CLEARTEXT,),
            username="%EMAILADDRESS%",
        ),
    )


def test_spec_example_services(spec_provider: Provider) -> None:
    assert spec_provider.calendar == DavService(
        "https://dav.example.com/cal/%EMAILADDRESS%/", "%EMAILADDRESS%"
    )
    assert spec_provider.addressbook == DavService(
        "https://dav.example.com/card/%EMAILADDRESS%/", "%EMAILADDRESS%"
    )
    assert spec_provider.activesync == "https://eas.example.com/Microsoft-Server-ActiveSync"
    assert spec_provider.webmail == "https://webmail.example.com/"
    assert spec_provider.documentation == (
        Documentation(
            "https://example.com/help/mail",
            (("en", "Setting up mail"), ("de", "E-Mail einrichten")),
        ),
    )
    assert spec_provider.oauth2 == OAuth2(
        issuer="login.example.com",
        scope="https://mail.example.com/ offline_access",
        auth_url="https://login.example.com/oauth2/authorize",
        token_url="https://login.example.com/oauth2/token",
    )
    assert spec_provider.mobileconfig == MobileConfig("com.example.mail", "Example Ltd")


def test_optional_services_are_absent_when_not_written() -> None:
    provider = provider_of(with_domains("example.com"))
    assert provider.calendar is None
    assert provider.addressbook is None
    assert provider.activesync is None
    assert provider.webmail is None
    assert provider.documentation == ()
    assert provider.oauth2 is None


def test_documentation_text_may_be_a_plain_string_meaning_english() -> None:
    extra = "documentation:\n  - url: https://example.com/help\n    text: Help\n"
    provider = provider_of(with_domains("example.com", extra=extra))
    assert provider.documentation == (Documentation("https://example.com/help", (("en", "Help"),)),)


def test_auth_may_be_a_list_in_preference_order() -> None:
    text = with_domains("example.com").replace(
        "    security: ssl\n", "    security: ssl\n    auth: [OAuth2, password-encrypted]\n"
    )
    provider = provider_of(text)
    assert provider.incoming[0].auth == (Auth.OAUTH2, Auth.PASSWORD_ENCRYPTED)


# -- defaults ------------------------------------------------------------------------


def test_default_port_table_is_the_spec_table() -> None:
    table = {(t.value, s.value): port for (t, s), port in DEFAULT_PORTS.items()}
    assert table == SPEC_DEFAULT_PORTS


@pytest.mark.parametrize(
    ("server_type", "security"),
    sorted(SPEC_DEFAULT_PORTS),
    ids=[f"{t}-{s}" for t, s in sorted(SPEC_DEFAULT_PORTS)],
)
def test_a_server_without_port_gets_the_default(server_type: str, security: str) -> None:
    if server_type == "smtp":
        servers = servers_yaml("incoming", [("imap", "ssl")])
        servers += servers_yaml("outgoing", [("smtp", security)])
    else:
        servers = servers_yaml("incoming", [(server_type, security)])
        servers += servers_yaml("outgoing", [("smtp", "ssl")])
    provider = provider_of("domains: [example.com]\n" + servers)
    server = (provider.outgoing if server_type == "smtp" else provider.incoming)[0]
    assert server.type.value == server_type
    assert server.security.value == security
    assert server.port == SPEC_DEFAULT_PORTS[(server_type, security)]


def test_a_written_port_wins_over_the_default() -> None:
    text = with_domains("example.com").replace(
        "    security: ssl\n", "    security: ssl\n    port: 10993\n"
    )
    assert provider_of(text).incoming[0].port == 10993


def test_server_defaults_username_and_auth() -> None:
    provider = provider_of(with_domains("example.com"))
    for server in provider.incoming + provider.outgoing:
        assert server.username == "%EMAILADDRESS%"
        assert server.auth == (Auth.PASSWORD_CLEARTEXT,)
        assert server.pop3 is None


def test_username_may_use_each_placeholder() -> None:
    text = with_domains("example.com").replace(
        "    security: ssl\n", '    security: ssl\n    username: "%EMAILLOCALPART%@%EMAILDOMAIN%"\n'
    )
    assert provider_of(text).incoming[0].username == "%EMAILLOCALPART%@%EMAILDOMAIN%"


def test_provider_defaults_from_the_first_domain() -> None:
    provider = provider_of(with_domains("Mail.Example.COM", "example.net"))
    assert provider.id == "mail.example.com"
    assert provider.name == "mail.example.com"
    assert provider.short_name == "mail.example"  # name cut to 12 characters
    assert provider.mobileconfig == MobileConfig("com.example.mail", "mail.example.com")


def test_short_name_defaults_to_name_cut_to_12_characters() -> None:
    extra = "provider:\n  name: Example Mail Service\n"
    provider = provider_of(with_domains("example.com", extra=extra))
    assert provider.id == "example.com"
    assert provider.name == "Example Mail Service"
    assert provider.short_name == "Example Mail"
    assert len(provider.short_name) == 12


def test_a_short_name_is_not_cut() -> None:
    extra = "provider:\n  name: Example\n"
    provider = provider_of(with_domains("example.com", extra=extra))
    assert (provider.name, provider.short_name) == ("Example", "Example")


def test_mobileconfig_identifier_defaults_from_provider_id() -> None:
    extra = "provider:\n  id: mail.example.org\n  name: Example Mail\n"
    provider = provider_of(with_domains("example.com", extra=extra))
    assert provider.id == "mail.example.org"
    assert provider.mobileconfig == MobileConfig("org.example.mail", "Example Mail")


def test_mobileconfig_organization_alone_keeps_the_default_identifier() -> None:
    extra = "mobileconfig:\n  organization: Example Ltd\n"
    provider = provider_of(with_domains("example.com", extra=extra))
    assert provider.mobileconfig == MobileConfig("com.example", "Example Ltd")


# -- domains ---------------------------------------------------------------------------


def test_idn_domains_are_stored_as_a_labels() -> None:
    provider = provider_of(with_domains("müller.example", "BÜCHER.example.", "xn--4ca.example"))
    assert provider.domains == ("xn--mller-kva.example", "xn--bcher-kva.example", "xn--4ca.example")
    assert provider.id == "xn--mller-kva.example"


def test_wildcard_and_catch_all_are_accepted() -> None:
    provider = provider_of(with_domains("*.Example.com", "*.müller.example", "*"))
    assert provider.domains == ("*.example.com", "*.xn--mller-kva.example", "*")
    assert provider.concrete_domains == ()


def test_catch_all_provider_may_use_the_domain_in_host_names() -> None:
    text = textwrap.dedent(
        """\
        domains: ["*"]
        incoming:
          - type: imap
            host: "mail.%EMAILDOMAIN%"
            security: ssl
        outgoing:
          - type: smtp
            host: "smtp.%EMAILDOMAIN%"
            security: ssl
        """
    )
    provider = provider_of(text)
    assert provider.domains == ("*",)
    assert provider.incoming[0].host == "mail.%EMAILDOMAIN%"
    assert provider.outgoing[0].host == "smtp.%EMAILDOMAIN%"


def test_host_names_are_normalised() -> None:
    text = with_domains("example.com").replace("host: imap.example.com", "host: IMAP.Example.COM.")
    assert provider_of(text).incoming[0].host == "imap.example.com"


def test_domains_from_is_read_relative_to_the_yaml_file(tmp_path: Path) -> None:
    folder = tmp_path / "domains"
    folder.mkdir()
    (folder / "vdomains").write_text(
        "# customer domains, one a line\n"
        "example.org\n"
        "\n"
        "   shop.example   # indented, with a comment\n"
        "müller.example\n"
        "  \n",
        encoding="utf-8",
    )
    text = f"domains:\n  - example.com\ndomains_from: vdomains\n{MINIMAL_SERVERS}"
    (folder / "hoster.yaml").write_text(text, encoding="utf-8")
    provider, problems = load_file(folder / "hoster.yaml")  # the working directory is elsewhere
    assert [str(p) for p in problems] == []
    assert provider is not None
    assert provider.domains == (
        "example.com",
        "example.org",
        "shop.example",
        "xn--mller-kva.example",
    )


def test_domains_from_alone_is_enough(tmp_path: Path) -> None:
    (tmp_path / "vdomains").write_text("example.org\nexample.net\n", encoding="utf-8")
    text = f"domains_from: {tmp_path / 'vdomains'}\n{MINIMAL_SERVERS}"  # an absolute path
    provider = provider_of(text)
    assert provider.domains == ("example.org", "example.net")
    assert provider.id == "example.org"


def test_a_bad_line_in_domains_from_is_reported_with_that_files_line(tmp_path: Path) -> None:
    (tmp_path / "vdomains").write_text(
        "example.org\n# a comment\n\n-bad.example\nexample.net\n", encoding="utf-8"
    )
    (tmp_path / "hoster.yaml").write_text(
        f"domains_from: vdomains\n{MINIMAL_SERVERS}", encoding="utf-8"
    )
    provider, problems = load_file(tmp_path / "hoster.yaml")
    assert provider is None
    prefix = f"{tmp_path}/"
    assert [str(p).replace(prefix, "") for p in problems] == [
        "vdomains:4: domains_from: '-bad.example' is not a valid domain name "
        "(Label must not start or end with a hyphen)"
    ]


def test_a_missing_domains_from_file_is_reported_at_the_key(tmp_path: Path) -> None:
    (tmp_path / "hoster.yaml").write_text(
        f"{MINIMAL_SERVERS}domains_from: nowhere\n", encoding="utf-8"
    )
    provider, problems = load_file(tmp_path / "hoster.yaml")
    assert provider is None
    prefix = f"{tmp_path}/"
    assert [str(p).replace(prefix, "") for p in problems] == [
        "hoster.yaml:9: domains_from: cannot read nowhere: no such file or directory"
    ]


def test_a_domain_listed_twice_is_a_warning_only() -> None:
    provider, problems = build(with_domains("example.com", "EXAMPLE.com"))
    assert provider is not None
    assert provider.domains == ("example.com",)
    assert [str(p) for p in problems] == [
        "test.yaml:3: domains[1]: warning: example.com is listed twice (also test.yaml:2)"
    ]


# -- the plaintext rule -------------------------------------------------------------------


def plaintext_case(incoming: list[tuple[str, str]], outgoing: list[tuple[str, str]]) -> Provider:
    text = "domains: [example.com]\n" + servers_yaml("incoming", incoming)
    return provider_of(text + servers_yaml("outgoing", outgoing))


def test_plain_server_is_not_served_beside_a_tls_one() -> None:
    provider = plaintext_case([("imap", "none"), ("imap", "ssl")], [("smtp", "starttls")])
    assert len(provider.incoming) == 2  # the model keeps what the file says
    assert [s.host for s in provider.served_incoming] == ["s1.example.com"]
    assert [s.security for s in provider.served_incoming] == [Security.SSL]


def test_plain_server_is_served_when_it_is_the_only_kind() -> None:
    provider = plaintext_case([("imap", "none")], [("smtp", "starttls")])
    assert [s.security for s in provider.served_incoming] == [Security.NONE]
    assert [s.security for s in provider.served_outgoing] == [Security.STARTTLS]


def test_plaintext_rule_applies_to_outgoing_too() -> None:
    provider = plaintext_case([("imap", "ssl")], [("smtp", "none"), ("smtp", "ssl")])
    assert [s.security for s in provider.served_outgoing] == [Security.SSL]


def test_the_kinds_are_judged_separately() -> None:
    """TLS outgoing does not hide a plain incoming server, nor the other way round."""
    provider = plaintext_case([("pop3", "none")], [("smtp", "none"), ("smtp", "none")])
    assert [s.security for s in provider.served_incoming] == [Security.NONE]
    assert [s.security for s in provider.served_outgoing] == [Security.NONE, Security.NONE]
    provider = plaintext_case([("imap", "ssl")], [("smtp", "none")])
    assert [s.security for s in provider.served_outgoing] == [Security.NONE]


def test_a_tls_pop3_server_hides_a_plain_imap_server() -> None:
    """Same kind means incoming or outgoing, not the protocol."""
    provider = plaintext_case([("imap", "none"), ("pop3", "ssl")], [("smtp", "ssl")])
    assert [s.type for s in provider.served_incoming] == [ServerType.POP3]


def test_served_servers_keep_the_files_order() -> None:
    provider = plaintext_case(
        [("imap", "starttls"), ("imap", "none"), ("pop3", "ssl"), ("pop3", "none")],
        [("smtp", "starttls")],
    )
    assert [s.host for s in provider.served_incoming] == ["s0.example.com", "s2.example.com"]


def test_a_server_block_repeated_in_many_files_is_checked_alike_in_each() -> None:
    """Servers that passed their checks are remembered by what was written: the
    same block again gives an equal server; a block with a problem reports it
    in every file, and a changed line or value is checked anew."""
    good = with_domains("a.example")
    first, second = provider_of(good), provider_of(good.replace("a.example", "b.example"))
    assert first.incoming == second.incoming and first.incoming[0] is not None
    bad = with_domains("c.example").replace("security: ssl", "security: ssl\n    port: 99999")
    for _ in range(2):
        provider, problems = build(bad)
        assert provider is None
        assert [p.path for p in problems if p.is_error] == ["incoming[0].port"]
    moved = good.replace("incoming:\n", "incoming:\n\n")  # the same servers, a line lower
    lines = [server.lines for server in provider_of(moved).incoming]
    assert lines != [server.lines for server in first.incoming]
