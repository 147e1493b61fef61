"""The page for people, through the test client: parsed as HTML and compared with the YAML."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lxml.html
import pytest
import yaml
from babel.messages.pofile import read_po
from werkzeug.test import Client

from autoconf.app import Application
from autoconf.render import page
from autoconf.render.languages import LANGUAGES, translations
from tests.conftest import EXAMPLES, ROOT
from tests.helpers import SPEC_DEFAULT_PORTS

TLS_WORDS = {"ssl": "SSL/TLS", "starttls": "STARTTLS"}


def _(lang: str, message: str) -> str:
    return translations(lang).gettext(message)


def words(text: str) -> str:
    return " ".join(text.split())


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
                "security": _(lang, TLS_WORDS[server["security"]]),
                "username": template.replace("%EMAILADDRESS%", f"{local}@{domain}"),
                "password": _(lang, "Your email password (normal password)"),
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
    assert doc.xpath("//label[@for='emailaddress']/text()") == ["Email address"]
    assert "script-src" not in answer.headers["Content-Security-Policy"]
    assert "default-src 'none'" in answer.headers["Content-Security-Policy"]


@pytest.mark.parametrize("lang", list(LANGUAGES))
def test_settings_match_the_yaml(client: Client, lang: str) -> None:
    doc = parse(client.get("/", query_string={"emailaddress": "Alice@Example.COM", "lang": lang}))
    assert doc.get("lang") == lang
    assert tables(doc, "incoming") == expected("incoming", "Alice", "example.com", lang)
    assert tables(doc, "outgoing") == expected("outgoing", "Alice", "example.com", lang)
    text = words(doc.text_content())
    for message in (
        "Thunderbird finds the settings by itself: check that they match the table, then "
        "click Done.",
        "Choose File → Add Account.",
        "Open Settings → Apps → Mail → Mail Accounts → Add Account → Other → Add Mail Account.",
        "Tap your profile picture (top right) → Add another account → Other.",
        "Sending fails or times out: many networks block port 25. Use the port in the table "
        "above (465 or 587), never 25.",
    ):
        assert words(_(lang, message)) in text


@pytest.mark.parametrize("lang", [code for code in LANGUAGES if code != "en"])
def test_no_english_left(client: Client, lang: str) -> None:
    """Every text of the settings page and of an error page is in the language asked
    for: none of the English messages (longer than a word or two) shows."""
    catalog = read_po((ROOT / "autoconf" / "locale" / "page.pot").open("rb"))
    english = [
        str(m.id) for m in catalog if m.id and len(str(m.id)) > 14 and _(lang, str(m.id)) != m.id
    ]
    headers = {"Accept-Language": f"{lang}-XX, en;q=0.5"}
    for query in ("emailaddress=bob@example.com", "emailaddress=a@nope.example", ""):
        doc = parse(client.get(f"/?{query}", headers=headers))
        assert doc.get("lang") == lang
        text = words(doc.text_content())
        assert [message for message in english if words(message) in text] == []
    # ?lang= wins over the browser.
    assert parse(client.get("/?lang=en", headers=headers)).get("lang") == "en"


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
    assert "the profile is not signed" in doc.text_content().lower()
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
        assert alert.text_content().strip()
        # The form comes back with what was typed, as text, for correcting it.
        (field,) = doc.xpath("//input[@name='emailaddress']")
        assert field.get("value") == address[:320]
    else:
        assert (
            "<script>alert(1)</script>" in doc.xpath("//span[@class='address']")[0].text_content()
        )


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
        ("fr,de;q=0.8", "fr"),
        ("pt-BR,pt,de;q=0.8", "de"),  # a language we lack is passed over
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
    assert response.headers["Vary"] == "Accept-Language, User-Agent"


@pytest.mark.parametrize("typed", ["anna@xn--mller-kva.example", "anna@müller.example"])
def test_an_idn_address_is_shown_in_unicode(client: Client, typed: str) -> None:
    """People read müller, not xn--mller-kva; the profile link keeps the A-label."""
    text = client.get("/", query_string={"emailaddress": typed}).get_data(as_text=True)
    assert '<span class="address">anna@<wbr>müller.<wbr>example</span>' in text
    assert 'value="anna@müller.example"' in text
    assert "mobileconfig?emailaddress=anna%40xn--mller-kva.example" in text
