"""Addresses and domains from requests: normalisation and refusal with a reason."""

from __future__ import annotations

import pytest

from autoconf.address import (
    Address,
    InvalidDomain,
    domain_from_host,
    normalize_domain,
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
