"""Addresses and domains from requests: normalisation and refusal with a reason."""

from __future__ import annotations

import pytest

from autoconf.address import (
    Address,
    InvalidDomain,
    domain_from_host,
    normalize_domain,
    normalize_host,
    parse_address,
    redact_addresses,
    xml_escape,
)
from autoconf.errors import BadRequest


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("example.com", "example.com"),
        ("Example.COM", "example.com"),
        ("example.com.", "example.com"),
        ("müller.example", "xn--mller-kva.example"),
        ("MÜLLER.example", "xn--mller-kva.example"),
        ("xn--mller-kva.example", "xn--mller-kva.example"),
        ("XN--MLLER-KVA.example.", "xn--mller-kva.example"),
    ],
)
def test_domains_normalise_to_one_form(raw: str, expected: str) -> None:
    assert normalize_domain(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        ".",
        "a..b",
        "-a.example",
        "a_b.example",
        "exa mple.com",
        "x" * 64 + ".com",
        "xn--zz.example",
        "a." * 130 + "com",
    ],
)
def test_invalid_domains_are_refused(raw: str) -> None:
    with pytest.raises(InvalidDomain):
        normalize_domain(raw)


def test_address_keeps_local_part_and_normalises_domain() -> None:
    assert parse_address("O'Brien@Example.COM.") == Address("O'Brien", "example.com")
    assert parse_address("a&b@müller.example") == Address("a&b", "xn--mller-kva.example")
    assert parse_address('"john doe"@example.com').local == '"john doe"'


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("nobody", "no '@'"),
        ("@example.com", "nothing before"),
        ("a@b@example.com", "more than one '@'"),
        ("a b@example.com", "white space"),
        ("a\x00b@example.com", "control"),
        (".a@example.com", "misplaced dot"),
        ("a..b@example.com", "misplaced dot"),
        ("x" * 65 + "@example.com", "longer than 64"),
        ("a@localhost", "no dot"),
        ("a@exa_mple.com", "not a valid domain"),
        ("a@", "empty"),
    ],
)
def test_malformed_addresses_give_400_with_reason(raw: str, reason: str) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_address(raw)
    assert caught.value.status == 400
    assert reason in caught.value.reason
    assert "\n" not in caught.value.reason


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("autoconfig.example.com", "example.com"),
        ("autodiscover.Example.com:8443", "example.com"),
        ("example.com", "example.com"),
        ("autoconfig.com", "autoconfig.com"),
        ("autoconfig.müller.example", "xn--mller-kva.example"),
        ("[::1]:8080", None),
        ("bad host", None),
        ("", None),
    ],
)
def test_domain_from_host(host: str, expected: str | None) -> None:
    assert domain_from_host(host) == expected


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("", ""),
        (" ", ""),
        ("AUTOCONFIG.Example.com:80", "autoconfig.example.com:80"),
        ("example.com.", "example.com"),
        ("xn--mller-kva.example", "xn--mller-kva.example"),
        ("127.0.0.1:8080", "127.0.0.1:8080"),
        ("[::1]", "[::1]"),
        ("[0:0::1]:8080", "[::1]:8080"),
        ("localhost:08080", "localhost:8080"),
    ],
)
def test_hosts_are_normalised(host: str, expected: str) -> None:
    assert normalize_host(host) == expected


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("xn--zz.test", "'xn--zz.test' is not a valid domain name"),  # an IDNA error
        ("XN--", "is not a valid domain name"),
        ("a..b", "is not a valid domain name"),  # an empty label
        ("x" * 64 + ".example", "is not a valid domain name"),  # a label over 63 octets
        ("x." * 200 + "com", "longer than 253 characters"),
        ("exa_mple.com", "is not a valid domain name"),
        ("*.example.org", "is not a valid domain name"),
        (".", "the domain is empty"),
        ("autoconfig.m\xc3\xbcller.example", "characters no host name has"),  # raw UTF-8
        ("autoconfig.müller.example", "characters no host name has"),
        ("exa mple.com", "characters no host name has"),
        ("example.com\x00", "characters no host name has"),
        ("user@example.com", "characters no host name has"),
        ("example.com/x", "characters no host name has"),
        ("ex%41mple.com", "characters no host name has"),
        ("a:b:c", "more than one ':'"),
        ("example.com:", "port is not a number"),
        ("example.com:x", "port is not a number"),
        ("example.com:0", "port is not a number"),
        ("example.com:99999", "port is not a number"),
        ("[::1", "not a valid IPv6 literal"),
        ("[zz]:80", "not a valid IPv6 literal"),
        ("[::1]x", "not a valid IPv6 literal"),
    ],
)
def test_hosts_that_name_no_host_are_refused_with_a_reason(host: str, reason: str) -> None:
    with pytest.raises(BadRequest) as caught:
        normalize_host(host)
    assert caught.value.reason.startswith("the Host header")
    assert reason in caught.value.reason
    assert "\n" not in caught.value.reason and len(caught.value.reason) < 200


def test_xml_escape_covers_text_and_attributes() -> None:
    assert xml_escape("""<a href="x">'&'</a>""") == (
        "&lt;a href=&quot;x&quot;&gt;&apos;&amp;&apos;&lt;/a&gt;"
    )


def test_addresses_in_logged_paths() -> None:
    path = "/autodiscover/autodiscover.json/v1.0/Alice.Smith@example.com"
    assert (
        redact_addresses(path, "redact") == "/autodiscover/autodiscover.json/v1.0/***@example.com"
    )
    hashed = redact_addresses(path, "hash")
    assert "Alice" not in hashed and hashed.endswith("@example.com")
    assert hashed == redact_addresses(path.replace("Alice", "alice"), "hash")  # stable
    assert redact_addresses(path, "full") == path
    assert redact_addresses("/mail/config-v1.1.xml", "redact") == "/mail/config-v1.1.xml"


@pytest.mark.parametrize("local", ["<script>", "a(b)", "a,b", "a:b", "a;b", "a[b]", 'a"b', "a\\b"])
def test_specials_must_be_quoted(local: str) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_address(f"{local}@example.com")
    assert "must be quoted" in caught.value.reason
    assert parse_address(f'"{local}"@example.com').local == f'"{local}"'


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("/x?emailaddress=john=smith@d.example&y=1", "/x?emailaddress=***@d.example&y=1"),
        ("/x?emailaddress=alice smith@d.example", "/x?emailaddress=***@d.example"),
        ('/x?emailaddress="a b@c"@d.example', "/x?emailaddress=***@d.example"),
        ("/x?emailaddress=a/b@d.example", "/x?emailaddress=***@d.example"),
        ("/x?emailaddress=x\u00a0y@d.example", "/x?emailaddress=***@d.example"),
        (
            "/autodiscover/autodiscover.json/v1.0/bob+tag@d.example",
            "/autodiscover/autodiscover.json/v1.0/***@d.example",
        ),
        (
            "Invalid HTTP request line: 'GET /m?emailaddress=ü@d.example HTTP/1.1'",
            "Invalid HTTP request line: 'GET /m?emailaddress=***@d.example HTTP/1.1'",
        ),
        ("no address here", "no address here"),
    ],
)
def test_redaction_takes_the_whole_local_part(text: str, shown: str) -> None:
    from autoconf.address import redact_addresses

    assert redact_addresses(text, "redact") == shown


def test_the_hash_is_keyed() -> None:
    from autoconf.address import redact_addresses

    one = redact_addresses("/x?e=Carol@d.example", "hash", b"k1")
    assert one == redact_addresses("/x?e=carol@d.example", "hash", b"k1")
    assert one != redact_addresses("/x?e=carol@d.example", "hash", b"k2")
    assert "arol" not in one and one.endswith("@d.example")
