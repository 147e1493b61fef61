"""The page for people, through the test client: parsed as HTML and compared with the YAML."""

from __future__ import annotations

import base64
import hashlib
import re
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


HOSTER = "/?emailaddress=bob@example.org"
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
ANDROID = "Mozilla/5.0 (Linux; Android 15; SM-S921B) AppleWebKit/537.36 Chrome/131.0 Mobile"
MAC = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 Version/18.1 Safari"
WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"


def test_the_page_is_the_providers(client: Client) -> None:
    answer = client.get(HOSTER)
    doc = parse(answer)
    assert "Example Hosting" in doc.findtext(".//title")
    assert doc.findtext(".//h1") == "Set up your email at Example Hosting"
    assert doc.xpath("//p[@class='provider']/span/text()") == ["Example Hosting"]
    (logo,) = doc.xpath("//p[@class='provider']/img/@src")
    served = client.get(logo)
    assert served.status_code == 200 and served.content_type == "image/svg+xml"
    assert served.data == (EXAMPLES / "example-hosting-logo.svg").read_bytes()
    assert "sandbox" in served.headers["Content-Security-Policy"]
    again = client.get(logo, headers={"If-None-Match": served.headers["ETag"]})
    assert again.status_code == 304
    # The colour: one <style>, allowed by its hash and nothing else.
    (style,) = doc.xpath("//style/text()")
    assert style == ":root{--brand:#00695c;--button:#00695c}"
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    policy = answer.headers["Content-Security-Policy"]
    assert f"style-src 'self' 'sha256-{digest}';" in policy
    assert "unsafe-inline" not in policy
    # A provider without them: no logo, no style, the plain policy.
    plain = client.get("/?emailaddress=alice@example.com")
    assert parse(plain).xpath("//img | //style") == []
    assert "style-src 'self';" in plain.headers["Content-Security-Policy"]


@pytest.mark.parametrize(
    ("query", "status"),
    [("domain=example.com", 404), ("domain=nope.example", 404), ("domain=a..b", 400), ("", 400)],
)
def test_a_logo_that_is_not_there(client: Client, query: str, status: int) -> None:
    answer = client.get(f"/logo?{query}")
    assert answer.status_code == status
    assert answer.content_type.startswith("text/plain")


def test_everything_the_yaml_has(client: Client) -> None:
    doc = parse(client.get("/?emailaddress=alice@example.com"))
    data = yaml.safe_load((EXAMPLES / "example.com.yaml").read_text(encoding="utf-8"))
    fill = lambda text: text.replace("%EMAILADDRESS%", "alice@example.com")  # noqa: E731
    assert doc.xpath("//table[@id='calendar']//td[@class='url']")[0].text_content() == fill(
        data["calendar"]["url"]
    )
    assert doc.xpath("//table[@id='contacts']//td[@class='url']")[0].text_content() == fill(
        data["addressbook"]["url"]
    )
    assert doc.xpath("//a[@id='webmail']/@href") == [data["webmail"]["url"]]
    links = {a.get("href"): a.text_content() for a in doc.xpath("//ul[@class='links']//a")}
    assert links == {"https://example.com/help/mail": "Setting up mail"}
    support = doc.xpath("//ul[@class='support']//a/@href")
    assert support == [
        data["support"]["url"],
        f"mailto:{data['support']['email']}",
        "tel:" + data["support"]["phone"].replace(" ", ""),
    ]
    # Both outgoing servers, the second as the alternative.
    captions = [t.findtext("caption") for t in doc.xpath("//table[starts-with(@id,'outgoing-')]")]
    assert captions == [None, "Alternative, if the one above does not work"]


def steps_order(doc: lxml.html.HtmlElement) -> list[str]:
    return [str(i).removeprefix("steps-") for i in doc.xpath("//*[@id='steps']/details/@id")]


def test_without_a_user_agent_every_program_in_the_usual_order(client: Client) -> None:
    doc = parse(client.get("/?emailaddress=alice@example.com", headers={"User-Agent": ""}))
    assert steps_order(doc) == [client_id for client_id, _ in page.CLIENTS]
    assert doc.xpath("//*[@id='steps']/details[@open]") == []
    assert doc.xpath("//*[@id='this-device']") == []
    assert len(doc.xpath("//figure[@class='qr']")) == 1


def test_an_iphone_gets_the_profile_first_and_no_qr_code(client: Client) -> None:
    doc = parse(client.get("/?emailaddress=alice@example.com", headers={"User-Agent": IPHONE}))
    (first,) = doc.xpath("//*[@id='this-device']/*[@class='client']/@id")
    assert first == "steps-iphone"
    ids = [el.get("id") for el in doc.iter() if el.get("id") in ("profile", "settings")]
    assert ids == ["profile", "settings"]  # the button before the tables
    assert doc.xpath("//figure[@class='qr']") == []
    assert "iphone" not in steps_order(doc)  # shown once


def test_an_android_phone_gets_its_apps_first(client: Client) -> None:
    doc = parse(client.get("/?emailaddress=alice@example.com", headers={"User-Agent": ANDROID}))
    shown = doc.xpath("//*[@id='this-device']/*[@class='client']/@id")
    assert shown == ["steps-android_thunderbird", "steps-gmail", "steps-samsung"]
    assert doc.xpath("//figure[@class='qr']") == []


@pytest.mark.parametrize(
    ("agent", "first"),
    [(MAC, ["mac", "outlook_mac"]), (WINDOWS, ["outlook_new", "outlook_classic"])],
)
def test_a_computer_gets_its_programs_first_and_open(
    client: Client, agent: str, first: list[str]
) -> None:
    doc = parse(client.get("/?emailaddress=alice@example.com", headers={"User-Agent": agent}))
    assert steps_order(doc)[:2] == first
    opened = [str(i).removeprefix("steps-") for i in doc.xpath("//details[@open]/@id")]
    assert opened[:2] == first
    assert len(doc.xpath("//figure[@class='qr']")) == 1  # the iPhone's, to scan from here


def test_values_break_only_after_dots_at_signs_and_slashes(client: Client) -> None:
    """The page's own markup (as sent: an HTML parser may nest <wbr>): every break
    opportunity in a value to type follows a dot, an @ or a slash."""
    text = client.get("/?emailaddress=alice@example.com").get_data(as_text=True)
    cells = re.findall(r'<span class="value">(.*?)</span>', text)
    assert len(cells) >= 6
    for cell in cells:
        for before in cell.split("<wbr>")[:-1]:
            assert before[-1] in ".@/", cell
    assert '<td class="host"><span class="value">imap.<wbr>example.<wbr>com</span></td>' in text


def test_an_idn_host_in_unicode_with_its_a_label(make_app: Callable[..., Application]) -> None:
    files = {
        "m.yaml": "domains: [müller.example]\n"
        "incoming: [{type: imap, host: imap.müller.example, security: ssl}]\n"
        "outgoing: [{host: smtp.müller.example, security: ssl}]\n"
    }
    client = make_app(files).test_client()
    doc = parse(client.get("/", query_string={"emailaddress": "anna@müller.example"}))
    (host,) = doc.xpath("//table[@id='incoming-1']//td[@class='host']")
    assert host.text_content().startswith("imap.müller.example")
    (ascii_form,) = host.xpath(".//span[@class='ascii']//span")
    assert ascii_form.text_content() == "imap.xn--mller-kva.example"
    (user,) = doc.xpath("//table[@id='incoming-1']//td[@class='username']")
    # The login every automatic client gets (issue 16): the A-label, explained in Unicode.
    assert user.text_content().startswith("anna@xn--mller-kva.example")
    assert "anna@müller.example" in user.xpath(".//span[@class='ascii']")[0].text_content()


@pytest.mark.parametrize(
    ("query", "status", "title"),
    [
        ("emailaddress=a@nope.example", 404, "Für nope.example haben wir keine Einstellungen"),
        ("emailaddress=a@müller.nope", 404, "Für müller.nope haben wir keine Einstellungen"),
        ("emailaddress=not-an-address", 400, "Das ist keine E-Mail-Adresse"),
        ("emailaddress=a@b@c", 400, "Das ist keine E-Mail-Adresse"),
    ],
)
def test_errors_say_what_to_do_in_the_readers_language(
    client: Client, query: str, status: int, title: str
) -> None:
    answer = client.get(f"/?{query}", headers={"Accept-Language": "de"})
    assert answer.status_code == status
    doc = parse(answer)
    assert doc.findtext(".//h1") == title == doc.findtext(".//title")
    (alert,) = doc.xpath("//*[@role='alert']")
    assert "Anbieter" in alert.text_content() or "Prüfen" in alert.text_content()
    assert doc.xpath("//form//input[@name='emailaddress']")  # the form, to try again


def test_a_bug_gets_a_page_for_people(
    client: Client, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A fault of ours (here: the page's renderer broken on purpose) is a 500 page in
    the reader's language, with what to do; the traceback goes to the log only."""

    def broken(*args: object, **kwargs: object) -> str:
        raise RuntimeError("renderer broken for the test")

    monkeypatch.setattr(page, "settings", broken)
    answer = client.get("/?emailaddress=alice@example.com", headers={"Accept-Language": "fr"})
    assert answer.status_code == 500
    doc = parse(answer)
    assert doc.get("lang") == "fr"
    assert doc.findtext(".//h1") == translations("fr").gettext("Something went wrong on our side")
    assert "renderer broken" not in answer.get_data(as_text=True)
    assert doc.xpath("//input[@name='emailaddress']/@value") == ["alice@example.com"]
    assert any("renderer broken" in str(r.exc_info) for r in caplog.records if r.exc_info)
