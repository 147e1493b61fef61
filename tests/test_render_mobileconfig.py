"""Apple configuration profiles (docs/http.md#apple-configuration-profile), parsed with plistlib.

Every key of the mail payload is compared with the YAML it comes from; the
CalDAV/CardDAV payloads with their URLs; identifiers must be stable for one
address and distinct for others, and no profile may ever carry a password.
"""

from __future__ import annotations

import plistlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from autoconf.address import normalize_domain, parse_address
from autoconf.errors import ClientCannotUse
from autoconf.model import DEFAULT_PORTS, Security, ServerType
from autoconf.render import mobileconfig
from tests.conftest import EXAMPLES
from tests.helpers import provider_from_yaml, provider_text, server_yaml

AUTH = {
    "password-cleartext": "EmailAuthPassword",
    "password-encrypted": "EmailAuthCRAMMD5",
    "NTLM": "EmailAuthNTLM",
    "none": "EmailAuthNone",
}
ACCOUNT_TYPE = {"imap": "EmailTypeIMAP", "pop3": "EmailTypePOP"}
MAIL = "com.apple.mail.managed"
CALDAV = "com.apple.caldav.account"
CARDDAV = "com.apple.carddav.account"
IMAP_SSL = server_yaml("imap", "ssl")
SMTP_SSL = server_yaml("smtp", "ssl")


def compile_text(text: str) -> mobileconfig.ProfileDocument:
    return mobileconfig.compile_provider(provider_from_yaml(text))


def profile_of(compiled: mobileconfig.ProfileDocument, address: str) -> dict[str, Any]:
    body = mobileconfig.render(compiled, parse_address(address))
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    profile = plistlib.loads(body)
    assert isinstance(profile, dict)
    return profile


def render(text: str, address: str = "alice@example.com") -> dict[str, Any]:
    return profile_of(compile_text(text), address)


def payloads(profile: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [p for p in profile["PayloadContent"] if p["PayloadType"] == kind]


def mail_payload(profile: dict[str, Any]) -> dict[str, Any]:
    (mail,) = payloads(profile, MAIL)
    return mail


def fill(template: str, local: str, domain: str) -> str:
    return (
        template.replace("%EMAILADDRESS%", f"{local}@{domain}")
        .replace("%EMAILLOCALPART%", local)
        .replace("%EMAILDOMAIN%", domain)
    )


def auth_list(server: dict[str, Any]) -> list[str]:
    auth = server.get("auth", "password-cleartext")
    return auth if isinstance(auth, list) else [auth]


def first_usable(servers: list[dict[str, Any]]) -> tuple[dict[str, Any], str]:
    """The server Apple Mail gets: TLS servers only where any exist
    (docs/domain-files.md#the-plaintext-rule), then the first with a login Apple
    Mail knows, and that login."""
    secure = [s for s in servers if s["security"] != "none"]
    for server in secure or servers:
        for auth in auth_list(server):
            if auth in AUTH:
                return server, AUTH[auth]
    raise AssertionError("no usable server in the YAML")


def port_of(server: dict[str, Any]) -> int:
    default = DEFAULT_PORTS[(ServerType(server["type"]), Security(server["security"]))]
    return int(server.get("port", default))


def walk(value: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) pair anywhere in a plist."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield key, item
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)


def identifiers(profile: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """PayloadIdentifier and PayloadUUID of the profile and of each payload, by type."""
    found = {"Configuration": (profile["PayloadIdentifier"], profile["PayloadUUID"])}
    for payload in profile["PayloadContent"]:
        found[payload["PayloadType"]] = (payload["PayloadIdentifier"], payload["PayloadUUID"])
    return found


def assert_no_password(profile: dict[str, Any]) -> None:
    for key, value in walk(profile):
        assert not ("password" in key.lower() and isinstance(value, str)), (key, value)
        assert key not in ("IncomingPassword", "OutgoingPassword", "Password")


# ---------------------------------------------------------------------------
# The example files, key by key


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
@pytest.mark.parametrize("local", ["alice", "Bob.Smith"])
def test_every_example_matches_its_yaml(path: Path, local: str) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    domain = normalize_domain(data["domains"][0])
    address = f"{local}@{domain}"
    profile = render(path.read_text(encoding="utf-8"), address)

    name = data["provider"]["name"]
    settings = data.get("mobileconfig", {})
    assert profile["PayloadType"] == "Configuration"
    assert profile["PayloadVersion"] == 1
    assert profile["PayloadDisplayName"] == name
    assert profile["PayloadOrganization"] == settings.get("organization", name)
    identifier = settings.get("identifier", ".".join(reversed(data["provider"]["id"].split("."))))
    assert profile["PayloadIdentifier"].startswith(identifier + ".")
    assert address in profile["PayloadDescription"]

    mail = mail_payload(profile)
    incoming, incoming_auth = first_usable(data["incoming"])
    outgoing, outgoing_auth = first_usable(data["outgoing"])
    incoming_user = fill(incoming.get("username", "%EMAILADDRESS%"), local, domain)
    outgoing_user = fill(outgoing.get("username", "%EMAILADDRESS%"), local, domain)
    assert mail["PayloadVersion"] == 1
    assert mail["PayloadIdentifier"].startswith(identifier + ".")
    assert mail["EmailAccountDescription"] == name
    assert mail["EmailAccountType"] == ACCOUNT_TYPE[incoming["type"]]
    assert mail["EmailAddress"] == address
    assert mail["IncomingMailServerHostName"] == fill(incoming["host"], local, domain)
    assert mail["IncomingMailServerPortNumber"] == port_of(incoming)
    assert mail["IncomingMailServerUseSSL"] is (incoming["security"] != "none")
    assert mail["IncomingMailServerUsername"] == incoming_user
    assert mail["IncomingMailServerAuthentication"] == incoming_auth
    assert mail["OutgoingMailServerHostName"] == fill(outgoing["host"], local, domain)
    assert mail["OutgoingMailServerPortNumber"] == port_of(outgoing)
    assert mail["OutgoingMailServerUseSSL"] is (outgoing["security"] != "none")
    assert mail["OutgoingMailServerUsername"] == outgoing_user
    assert mail["OutgoingMailServerAuthentication"] == outgoing_auth
    assert mail["OutgoingPasswordSameAsIncomingPassword"] is (incoming_user == outgoing_user)

    for key, kind, prefix in (("calendar", CALDAV, "CalDAV"), ("addressbook", CARDDAV, "CardDAV")):
        found = payloads(profile, kind)
        if key not in data:
            assert found == []
            continue
        (dav,) = found
        url = fill(data[key]["url"], local, domain)
        parts = urlsplit(url)
        assert dav[f"{prefix}HostName"] == parts.hostname
        assert dav[f"{prefix}Port"] == (parts.port or 443)
        assert dav[f"{prefix}PrincipalURL"] == url
        assert dav[f"{prefix}UseSSL"] is True
        assert dav[f"{prefix}Username"] == fill(
            data[key].get("username", "%EMAILADDRESS%"), local, domain
        )
    assert_no_password(profile)


def test_example_com_has_mail_caldav_and_carddav_only() -> None:
    profile = render((EXAMPLES / "example.com.yaml").read_text(encoding="utf-8"))
    kinds = [p["PayloadType"] for p in profile["PayloadContent"]]
    assert sorted(kinds) == sorted([MAIL, CALDAV, CARDDAV])
    # ActiveSync is configured, but this profile sets up IMAP, not Exchange.
    assert not payloads(profile, "com.apple.eas.account")


def test_hosting_example_logs_in_with_the_local_part() -> None:
    text = (EXAMPLES / "hosting.example.org.yaml").read_text(encoding="utf-8")
    mail = mail_payload(render(text, "bob@müller.example"))
    assert mail["EmailAddress"] == "bob@xn--mller-kva.example"
    assert mail["IncomingMailServerUsername"] == "bob"
    assert mail["OutgoingMailServerUsername"] == "bob"
    assert mail["IncomingMailServerPortNumber"] == 143
    assert mail["IncomingMailServerUseSSL"] is True  # STARTTLS is TLS too


# ---------------------------------------------------------------------------
# Providers built for one rule each


def test_pop3_first_gives_a_pop_account() -> None:
    incoming = server_yaml("pop3", "ssl") + IMAP_SSL
    mail = mail_payload(render(provider_text(incoming, SMTP_SSL)))
    assert mail["EmailAccountType"] == "EmailTypePOP"
    assert mail["IncomingMailServerHostName"] == "pop3.example.com"
    assert mail["IncomingMailServerPortNumber"] == 995
    assert mail["IncomingMailServerUseSSL"] is True


@pytest.mark.parametrize(
    ("kind", "security", "port", "use_ssl"),
    [
        ("imap", "ssl", 993, True),
        ("imap", "starttls", 143, True),
        ("imap", "none", 143, False),
        ("pop3", "starttls", 110, True),
        ("pop3", "none", 110, False),
    ],
)
def test_incoming_security(kind: str, security: str, port: int, use_ssl: bool) -> None:
    mail = mail_payload(render(provider_text(server_yaml(kind, security), SMTP_SSL)))
    assert mail["EmailAccountType"] == ACCOUNT_TYPE[kind]
    assert mail["IncomingMailServerPortNumber"] == port
    assert mail["IncomingMailServerUseSSL"] is use_ssl


@pytest.mark.parametrize(
    ("security", "port", "use_ssl"),
    [("ssl", 465, True), ("starttls", 587, True), ("none", 587, False)],
)
def test_outgoing_security(security: str, port: int, use_ssl: bool) -> None:
    mail = mail_payload(render(provider_text(IMAP_SSL, server_yaml("smtp", security))))
    assert mail["OutgoingMailServerHostName"] == "smtp.example.com"
    assert mail["OutgoingMailServerPortNumber"] == port
    assert mail["OutgoingMailServerUseSSL"] is use_ssl


def test_explicit_ports_are_kept() -> None:
    text = provider_text(server_yaml("imap", "starttls", 1143), server_yaml("smtp", "ssl", 2465))
    mail = mail_payload(render(text))
    assert mail["IncomingMailServerPortNumber"] == 1143
    assert mail["OutgoingMailServerPortNumber"] == 2465


def test_cleartext_server_is_skipped_when_a_tls_one_exists() -> None:
    incoming = server_yaml("imap", "none") + server_yaml("pop3", "ssl")
    outgoing = server_yaml("smtp", "none") + server_yaml("smtp", "starttls")
    mail = mail_payload(render(provider_text(incoming, outgoing)))
    assert mail["EmailAccountType"] == "EmailTypePOP"
    assert mail["IncomingMailServerUseSSL"] is True
    assert mail["OutgoingMailServerPortNumber"] == 587
    assert mail["OutgoingMailServerUseSSL"] is True


@pytest.mark.parametrize(
    ("auth", "expected"),
    [
        ("password-cleartext", "EmailAuthPassword"),
        ("password-encrypted", "EmailAuthCRAMMD5"),
        ("NTLM", "EmailAuthNTLM"),
    ],
)
def test_incoming_and_outgoing_auth_mapping(auth: str, expected: str) -> None:
    text = provider_text(
        server_yaml("imap", "ssl", auth=auth), server_yaml("smtp", "ssl", auth=auth)
    )
    mail = mail_payload(render(text))
    assert mail["IncomingMailServerAuthentication"] == expected
    assert mail["OutgoingMailServerAuthentication"] == expected


@pytest.mark.parametrize("auth", ["none", "client-IP-address"])
def test_outgoing_without_login_is_auth_none(auth: str) -> None:
    mail = mail_payload(render(provider_text(IMAP_SSL, server_yaml("smtp", "ssl", auth=auth))))
    assert mail["OutgoingMailServerAuthentication"] == "EmailAuthNone"


def test_default_auth_is_password() -> None:
    mail = mail_payload(render(provider_text(IMAP_SSL, SMTP_SSL)))
    assert mail["IncomingMailServerAuthentication"] == "EmailAuthPassword"
    assert mail["OutgoingMailServerAuthentication"] == "EmailAuthPassword"


def test_oauth2_first_then_password_gives_password() -> None:
    auth = "[OAuth2, password-cleartext]"
    text = provider_text(
        server_yaml("imap", "ssl", auth=auth), server_yaml("smtp", "ssl", auth=auth)
    )
    mail = mail_payload(render(text))
    assert mail["IncomingMailServerAuthentication"] == "EmailAuthPassword"
    assert mail["OutgoingMailServerAuthentication"] == "EmailAuthPassword"


def test_first_server_apple_can_log_in_to_is_taken() -> None:
    incoming = server_yaml("imap", "ssl", auth="OAuth2") + server_yaml(
        "pop3", "ssl", auth="password-encrypted"
    )
    mail = mail_payload(render(provider_text(incoming, SMTP_SSL)))
    assert mail["EmailAccountType"] == "EmailTypePOP"
    assert mail["IncomingMailServerHostName"] == "pop3.example.com"
    assert mail["IncomingMailServerAuthentication"] == "EmailAuthCRAMMD5"


@pytest.mark.parametrize(
    ("incoming", "outgoing", "kind"),
    [
        (server_yaml("imap", "ssl", auth="OAuth2"), SMTP_SSL, "incoming"),
        (server_yaml("imap", "ssl", auth="[OAuth2, GSSAPI]"), SMTP_SSL, "incoming"),
        (server_yaml("imap", "ssl", auth="TLS-client-cert"), SMTP_SSL, "incoming"),
        (IMAP_SSL, server_yaml("smtp", "ssl", auth="[GSSAPI, OAuth2]"), "outgoing"),
    ],
)
def test_provider_apple_mail_cannot_use(incoming: str, outgoing: str, kind: str) -> None:
    compiled = compile_text(provider_text(incoming, outgoing))
    with pytest.raises(ClientCannotUse) as caught:
        mobileconfig.render(compiled, parse_address("alice@example.com"))
    assert caught.value.status == 404
    assert "Apple Mail" in caught.value.reason
    assert kind in caught.value.reason


def test_outgoing_password_same_as_incoming() -> None:
    same = provider_text(IMAP_SSL, SMTP_SSL)
    assert mail_payload(render(same))["OutgoingPasswordSameAsIncomingPassword"] is True
    other = provider_text(IMAP_SSL, server_yaml("smtp", "ssl", username='"%EMAILLOCALPART%"'))
    mail = mail_payload(render(other))
    assert mail["IncomingMailServerUsername"] == "alice@example.com"
    assert mail["OutgoingMailServerUsername"] == "alice"
    assert mail["OutgoingPasswordSameAsIncomingPassword"] is False


# ---------------------------------------------------------------------------
# CalDAV and CardDAV


def test_dav_payloads() -> None:
    extra = (
        'calendar: {url: "https://dav.%EMAILDOMAIN%/cal/%EMAILADDRESS%/"}\n'
        "addressbook:\n"
        '  url: "https://card.example.com:8443/dav/%EMAILLOCALPART%/"\n'
        '  username: "%EMAILLOCALPART%"\n'
    )
    profile = render(provider_text(IMAP_SSL, SMTP_SSL, extra), "bob@example.com")
    (cal,) = payloads(profile, CALDAV)
    assert cal["CalDAVHostName"] == "dav.example.com"
    assert cal["CalDAVPort"] == 443
    assert cal["CalDAVPrincipalURL"] == "https://dav.example.com/cal/bob@example.com/"
    assert cal["CalDAVUseSSL"] is True
    assert cal["CalDAVUsername"] == "bob@example.com"
    assert cal["PayloadVersion"] == 1
    (card,) = payloads(profile, CARDDAV)
    assert card["CardDAVHostName"] == "card.example.com"
    assert card["CardDAVPort"] == 8443
    assert card["CardDAVPrincipalURL"] == "https://card.example.com:8443/dav/bob/"
    assert card["CardDAVUseSSL"] is True
    assert card["CardDAVUsername"] == "bob"
    assert_no_password(profile)


def test_only_the_configured_dav_payload() -> None:
    extra = 'addressbook: {url: "https://dav.example.com/card/"}\n'
    profile = render(provider_text(IMAP_SSL, SMTP_SSL, extra))
    assert payloads(profile, CALDAV) == []
    assert len(payloads(profile, CARDDAV)) == 1


@pytest.mark.parametrize(
    "url",
    [
        "https://%EMAILLOCALPART%@dav.example.com/cal/",
        "https://dav.example.com?zone=Europe:Berlin",
    ],
)
def test_dav_host_and_port_are_the_urls(url: str) -> None:
    """CalDAVHostName/Port are the URL's host name and port as any URL parser reads them."""
    extra = f'calendar: {{url: "{url}"}}\n'
    profile = render(provider_text(IMAP_SSL, SMTP_SSL, extra))
    (cal,) = payloads(profile, CALDAV)
    parts = urlsplit(fill(url, "alice", "example.com"))
    assert cal["CalDAVHostName"] == parts.hostname
    assert cal["CalDAVPort"] == (parts.port or 443)


# ---------------------------------------------------------------------------
# Never a password


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_never_a_password(path: Path) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    domain = normalize_domain(data["domains"][0])
    body = mobileconfig.render(
        mobileconfig.compile_provider(provider_from_yaml(path.read_text(encoding="utf-8"))),
        parse_address(f"alice@{domain}"),
    )
    assert_no_password(plistlib.loads(body))
    assert b"<key>IncomingPassword</key>" not in body
    assert b"<key>OutgoingPassword</key>" not in body


# ---------------------------------------------------------------------------
# Identifiers


def test_identifiers_are_uuid5_and_distinct_within_a_profile() -> None:
    profile = render((EXAMPLES / "example.com.yaml").read_text(encoding="utf-8"))
    ids = identifiers(profile)
    assert set(ids) == {"Configuration", MAIL, CALDAV, CARDDAV}
    uuids = [u for _, u in ids.values()]
    names = [i for i, _ in ids.values()]
    assert len(set(uuids)) == len(uuids)
    assert len(set(names)) == len(names)
    for value in uuids:
        assert uuid.UUID(value).version == 5


def test_identifiers_stable_across_calls_and_recompiles() -> None:
    text = (EXAMPLES / "example.com.yaml").read_text(encoding="utf-8")
    compiled = compile_text(text)
    first = mobileconfig.render(compiled, parse_address("alice@example.com"))
    again = mobileconfig.render(compiled, parse_address("alice@example.com"))
    # A reload compiles the file again: the same address still gets the same profile.
    recompiled = mobileconfig.render(compile_text(text), parse_address("alice@example.com"))
    assert first == again == recompiled
    assert identifiers(plistlib.loads(first)) == identifiers(plistlib.loads(recompiled))


def test_identifiers_distinct_across_addresses() -> None:
    compiled = compile_text((EXAMPLES / "example.com.yaml").read_text(encoding="utf-8"))
    seen: dict[str, str] = {}
    for address in ("alice@example.com", "bob@example.com", "alice@example.net"):
        for kind, (identifier, value) in identifiers(profile_of(compiled, address)).items():
            for item in (identifier, value):
                assert item not in seen, (address, kind, item, seen.get(item))
                seen[item] = address


def test_identifiers_distinct_across_providers() -> None:
    one = compile_text(provider_text(IMAP_SSL, SMTP_SSL, "mobileconfig: {identifier: com.one}\n"))
    two = compile_text(provider_text(IMAP_SSL, SMTP_SSL, "mobileconfig: {identifier: com.two}\n"))
    ids_one = identifiers(profile_of(one, "alice@example.com"))
    ids_two = identifiers(profile_of(two, "alice@example.com"))
    assert ids_one[MAIL][0].startswith("com.one.")
    assert ids_two[MAIL][0].startswith("com.two.")
    values_one = {v for pair in ids_one.values() for v in pair}
    values_two = {v for pair in ids_two.values() for v in pair}
    assert values_one.isdisjoint(values_two)


def test_case_of_the_address_keeps_the_identifiers() -> None:
    compiled = compile_text((EXAMPLES / "example.com.yaml").read_text(encoding="utf-8"))
    lower = identifiers(profile_of(compiled, "alice@example.com"))
    assert identifiers(profile_of(compiled, "Alice@Example.COM")) == lower
    assert identifiers(profile_of(compiled, "ALICE@example.com.")) == lower


# ---------------------------------------------------------------------------
# Hostile local parts


@pytest.mark.parametrize(
    "local",
    # Unquoted, RFC 5322 allows ' & % and such; the markup-like ones need quotes.
    ["o'brien", "a&b", '"<x>"', '"</string>"', '"x]]>y"', "%EMAILDOMAIN%", '"a\\"b"'],
)
def test_hostile_local_part_still_parses(local: str) -> None:
    address = f"{local}@example.com"
    extra = 'calendar: {url: "https://dav.example.com/cal/%EMAILADDRESS%/"}\n'
    incoming = server_yaml("imap", "ssl", username='"%EMAILLOCALPART%"')
    profile = render(provider_text(incoming, SMTP_SSL, extra), address)
    mail = mail_payload(profile)
    assert mail["EmailAddress"] == address
    assert mail["IncomingMailServerUsername"] == local
    assert mail["OutgoingMailServerUsername"] == address
    (cal,) = payloads(profile, CALDAV)
    assert cal["CalDAVUsername"] == address
    assert address in profile["PayloadDescription"]
    assert_no_password(profile)


def test_hostile_provider_name_is_escaped() -> None:
    extra = 'provider: {name: "A&B <Mail> \\"Co\\""}\n'
    profile = render(provider_text(IMAP_SSL, SMTP_SSL, extra))
    assert profile["PayloadDisplayName"] == 'A&B <Mail> "Co"'
    assert mail_payload(profile)["EmailAccountDescription"] == 'A&B <Mail> "Co"'


def test_catch_all_fills_the_domain_into_the_host() -> None:
    text = (
        'domains: ["*"]\n'
        "incoming:\n"
        "  - {type: imap, host: imap.%EMAILDOMAIN%, security: ssl}\n"
        "outgoing:\n"
        "  - {type: smtp, host: smtp.%EMAILDOMAIN%, security: starttls}\n"
    )
    mail = mail_payload(render(text, "carol@Kunde.Example"))
    assert mail["EmailAddress"] == "carol@kunde.example"
    assert mail["IncomingMailServerHostName"] == "imap.kunde.example"
    assert mail["OutgoingMailServerHostName"] == "smtp.kunde.example"
