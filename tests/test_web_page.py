"""The page for people, through the test client: parsed as HTML and compared with the YAML."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lxml.html
import pytest
import yaml
from werkzeug.test import Client

from autoconf.app import Application
from autoconf.render import page
from autoconf.render.page_texts import TEXTS
from tests.conftest import EXAMPLES
from tests.helpers import SPEC_DEFAULT_PORTS

TLS_WORDS = {
    "en": {"ssl": "SSL/TLS", "starttls": "STARTTLS"},
    "de": {"ssl": "SSL/TLS", "starttls": "STARTTLS"},
}


def parse(answer: Any) -> lxml.html.HtmlElement:
    assert answer.content_type == "text/html; charset=utf-8"
    return lxml.html.fromstring(answer.data)


def tables(doc: lxml.html.HtmlElement, kind: str) -> list[dict[str, str]]:
    return [
        {cell.get("class"): cell.text_content() for cell in table.xpath(".//td")}
        for table in doc.xpath(f"//table[starts-with(@id, '{kind}-')]")
    ]


def expected(kind: str, local: str, domain: str, lang: str) -> list[dict[str, str]]:
    data = yaml.safe_load((EXAMPLES / "example.com.yaml").read_text(encoding="utf-8"))
    rows = []
    for server in data[kind]:
        template = server.get("username", "%EMAILADDRESS%")
        rows.append(
            {
                "protocol": server["type"].upper(),
                "host": server["host"],
                "port": str(
                    server.get("port", SPEC_DEFAULT_PORTS[(server["type"], server["security"])])
                ),
                "security": TLS_WORDS[lang][server["security"]],
                "username": template.replace("%EMAILADDRESS%", f"{local}@{domain}"),
                "password": TEXTS[lang]["pw_password-cleartext"],
            }
        )
    return rows


def test_the_form(client: Client) -> None:
    answer = client.get("/")
    assert answer.status_code == 200
    doc = parse(answer)
    assert doc.get("lang") == "en"
    (field,) = doc.xpath("//form//input[@name='emailaddress']")
    assert field.get("type") == "email" and field.get("id") == "emailaddress"
    assert doc.xpath("//label[@for='emailaddress']/text()") == [TEXTS["en"]["address_label"]]
    assert "script-src" not in answer.headers["Content-Security-Policy"]
    assert "default-src 'none'" in answer.headers["Content-Security-Policy"]


@pytest.mark.parametrize("lang", ["en", "de"])
def test_settings_match_the_yaml(client: Client, lang: str) -> None:
    doc = parse(client.get("/", query_string={"emailaddress": "Alice@Example.COM", "lang": lang}))
    assert doc.get("lang") == lang
    assert tables(doc, "incoming") == expected("incoming", "Alice", "example.com", lang)
    assert tables(doc, "outgoing") == expected("outgoing", "Alice", "example.com", lang)
    text = doc.text_content()
    for key in (
        "imap_pop_text",
        "thunderbird_steps",
        "outlook_steps",
        "android_steps",
        "problem_port25",
        "problem_auth",
        "problem_tls",
        "problem_pop3",
    ):
        assert " ".join(TEXTS[lang][key].split()) in " ".join(text.split())


def test_german_from_the_browser_and_no_english_left(client: Client) -> None:
    answer = client.get(
        "/?emailaddress=bob@example.com", headers={"Accept-Language": "de-CH, de;q=0.9, en;q=0.5"}
    )
    doc = parse(answer)
    assert doc.get("lang") == "de"
    text = " ".join(doc.text_content().split())
    english_only = [
        value
        for key, value in TEXTS["en"].items()
        if value != TEXTS["de"][key] and len(value) > 12 and key != "language"
    ]
    assert [value for value in english_only if value in text] == []
    # ?lang= wins over the browser.
    assert parse(client.get("/?lang=en", headers={"Accept-Language": "de"})).get("lang") == "en"


def test_both_languages_have_every_text() -> None:
    assert TEXTS["en"].keys() == TEXTS["de"].keys()
    assert all(value.strip() for texts in TEXTS.values() for value in texts.values())


PROFILE = "mobileconfig?emailaddress=alice%40example.com"


def qr_paths(element: lxml.html.HtmlElement) -> list[str]:
    return [str(d) for d in element.xpath(".//*[local-name()='path']/@d")]


def shown_qr(doc: lxml.html.HtmlElement) -> list[str]:
    (figure,) = doc.xpath("//figure[@class='qr']")
    return qr_paths(figure)


def qr_of(url: str) -> list[str]:
    return qr_paths(lxml.html.fromstring(str(page.qr_svg(url))))


def test_profile_link_and_qr(client: Client) -> None:
    doc = parse(client.get("/?emailaddress=alice@example.com"))
    (link,) = doc.xpath("//a[@id='profile']")
    # The link stays on the page's own origin; the QR code names the provider's
    # autodiscover. host (the test client's Host, localhost, is no served name).
    assert link.get("href") == PROFILE
    assert shown_qr(doc) == qr_of(f"https://autodiscover.example.com/{PROFILE}")
    assert TEXTS["en"]["apple_unsigned"] in doc.text_content()
    assert client.get("/" + link.get("href")).status_code == 200


@pytest.mark.parametrize(
    ("host", "qr_host"),
    [
        ("autoconfig.example.com", "autoconfig.example.com"),
        ("AUTODISCOVER.Example.NET", "autodiscover.example.net"),  # another served domain
        ("example.com", "example.com"),
        ("autoconfig.shop.example:80", "autoconfig.shop.example"),  # http: the port goes
        ("evil.example", "autodiscover.example.com"),
        ("autoconfig.evil.example", "autodiscover.example.com"),
        ("mail.example.com", "autodiscover.example.com"),  # not one of the two names
        ("127.0.0.1:8080", "autodiscover.example.com"),
        ("[::1]:8080", "autodiscover.example.com"),
    ],
)
def test_the_qr_code_names_only_a_served_host(client: Client, host: str, qr_host: str) -> None:
    doc = parse(client.get("/?emailaddress=alice@example.com", headers={"Host": host}))
    assert doc.xpath("//a[@id='profile']/@href") == [PROFILE]
    assert shown_qr(doc) == qr_of(f"https://{qr_host}/{PROFILE}")


def test_the_qr_code_names_the_public_host(make_app: Callable[..., Application]) -> None:
    files = {"a.yaml": (EXAMPLES / "example.com.yaml").read_text(encoding="utf-8")}
    client = make_app(files, public_host="autoconf.hoster.example").test_client()
    answer = client.get(
        "/?emailaddress=alice@example.com", headers={"Host": "autoconfig.example.com"}
    )
    assert shown_qr(parse(answer)) == qr_of(f"https://autoconf.hoster.example/{PROFILE}")


@pytest.mark.parametrize(
    ("address", "status"),
    [
        ("<script>alert(1)</script>@example.com", 400),
        ('"<script>alert(1)</script>"@example.com', 200),
        ("x" * 300 + "@example.com", 400),
        ("a@unknown.example", 404),
        ("not-an-address", 400),
    ],
)
def test_hostile_addresses_are_text(client: Client, address: str, status: int) -> None:
    answer = client.get("/", query_string={"emailaddress": address})
    assert answer.status_code == status
    doc = parse(answer)
    assert doc.xpath("//script") == []
    assert not any(name.startswith("on") for el in doc.iter() for name in el.attrib)
    assert doc.xpath("//*[@style]") == []
    if status != 200:
        (alert,) = doc.xpath("//*[@role='alert']")
        assert TEXTS["en"]["error_intro"] in alert.text_content()
        # The form comes back with what was typed, as text, for correcting it.
        (field,) = doc.xpath("//input[@name='emailaddress']")
        assert field.get("value") == address[:320]
    else:
        assert "<script>alert(1)</script>" in doc.xpath("//span[@class='address']")[0].text


@pytest.mark.parametrize("name", ["emailaddress", "EmailAddress", "EMAILADDRESS"])
def test_the_form_keeps_what_was_typed_whatever_the_parameter_is_called(
    client: Client, name: str
) -> None:
    """The page reads its query one way: the parameter in any letter case, for the
    answer and for its error alike (the form used to come back empty for EmailAddress)."""
    answer = client.get("/", query_string={name: "not-an-address"})
    assert answer.status_code == 400
    (field,) = parse(answer).xpath("//input[@name='emailaddress']")
    assert field.get("value") == "not-an-address"


def test_the_stylesheet_is_revalidated_by_its_etag(client: Client) -> None:
    first = client.get("/static/page.css")
    etag = first.headers["ETag"]
    again = client.get("/static/page.css", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    assert first.headers["Cache-Control"] == "no-cache"


def test_the_stylesheet_is_served(client: Client) -> None:
    answer = client.get("/static/page.css")
    assert answer.status_code == 200 and answer.content_type.startswith("text/css")
    assert b"@media print" in answer.data


@pytest.mark.parametrize(
    ("accept", "lang"),
    [
        ("de-CH,fr-CH;q=0.9,en;q=0.5", "de"),  # a regional tag first is its language
        ("en-GB,de;q=0.5", "en"),  # an exact match of lower quality does not win
        ("fr,de;q=0.8", "de"),
        ("de;q=0,en", "en"),  # q=0: not wanted
        ("DE-at", "de"),
        ("*", "en"),
        ("", "en"),
    ],
)
def test_the_browsers_order_of_languages_decides(client: Client, accept: str, lang: str) -> None:
    response = client.get("/", headers={"Accept-Language": accept})
    assert response.headers["Content-Language"] == lang
    assert f'<html lang="{lang}"' in response.get_data(as_text=True)
    assert response.headers["Vary"] == "Accept-Language"


@pytest.mark.parametrize("typed", ["anna@xn--mller-kva.example", "anna@müller.example"])
def test_an_idn_address_is_shown_in_unicode(client: Client, typed: str) -> None:
    """People read müller, not xn--mller-kva; the profile link keeps the A-label."""
    text = client.get("/", query_string={"emailaddress": typed}).get_data(as_text=True)
    assert '<span class="address">anna@müller.example</span>' in text
    assert 'value="anna@müller.example"' in text
    assert "mobileconfig?emailaddress=anna%40xn--mller-kva.example" in text
