"""Calendars and contacts the way clients look (RFC 6764): the .well-known
redirects (docs/http.md#calendars-and-contacts) and the records `dns` prints."""

from __future__ import annotations

from collections.abc import Callable

import dns.zone
import pytest

from autoconf.app import Application
from autoconf.cli import main
from autoconf.render.dav import ascii_url, base_url
from tests.test_dns import records

DAV = """\
provider: {id: dav.example}
domains: [dav.example, müller.example]
incoming: [{type: imap, host: imap.dav.example, security: ssl}]
outgoing: [{type: smtp, host: smtp.dav.example, security: ssl}]
calendar: {url: "https://dav.%EMAILDOMAIN%:8443/cal/%EMAILDOMAIN%/%EMAILLOCALPART%/home/"}
addressbook: {url: "https://contacts.dav.example/card/%EMAILADDRESS%/"}
"""
USER_HOST = """\
domains: [user.example]
incoming: [{type: imap, host: imap.user.example, security: ssl}]
outgoing: [{type: smtp, host: smtp.user.example, security: ssl}]
calendar: {url: "https://%EMAILLOCALPART%.cal.user.example/"}
addressbook: {url: "http://dav.user.example/"}
"""
NONE = """\
domains: [none.example]
incoming: [{type: imap, host: imap.none.example, security: ssl}]
outgoing: [{type: smtp, host: smtp.none.example, security: ssl}]
"""


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("https://dav.example.com/cal/%EMAILADDRESS%/", "https://dav.example.com/cal/"),
        ("https://dav.example.com/%EMAILADDRESS%", "https://dav.example.com/"),
        ("https://dav.%EMAILDOMAIN%/", "https://dav.%EMAILDOMAIN%/"),
        ("https://dav.example.com/x/?a=1#f", "https://dav.example.com/x/?a=1"),
        # The user only in the query: the path stays whole, the query goes.
        ("https://dav.example.com/dav?u=%EMAILLOCALPART%", "https://dav.example.com/dav"),
        ("https://%EMAILLOCALPART%.dav.example.com/", None),
        ("https://dav.example.com", "https://dav.example.com"),
    ],
)
def test_base_is_the_url_up_to_the_user(url: str, base: str | None) -> None:
    assert base_url(url) == base


def test_urls_are_made_ascii_for_a_location() -> None:
    assert ascii_url("https://dav.müller.example:8443/kalender/%EMAILADDRESS%/ü") == (
        "https://dav.xn--mller-kva.example:8443/kalender/%EMAILADDRESS%/%C3%BC"
    )


@pytest.fixture
def dav_app(make_app: Callable[..., Application]) -> Application:
    return make_app({"dav.yaml": DAV, "user.yaml": USER_HOST, "none.yaml": NONE})


@pytest.mark.parametrize("method", ["PROPFIND", "GET", "HEAD"])
@pytest.mark.parametrize("host", ["dav.example", "autoconfig.dav.example", "DAV.example:443"])
def test_without_an_address_the_base_for_the_hosts_domain(
    dav_app: Application, method: str, host: str
) -> None:
    client = dav_app.test_client()
    for path, want in [
        ("/.well-known/caldav", "https://dav.dav.example:8443/cal/dav.example/"),
        ("/.well-known/carddav", "https://contacts.dav.example/card/"),
    ]:
        body = b'<propfind xmlns="DAV:"><prop><current-user-principal/></prop></propfind>'
        response = client.open(path, method=method, headers={"Host": host}, data=body)
        assert response.status_code == 307, response.data
        assert response.headers["Location"] == want
        assert response.headers["Cache-Control"] == "no-store"
        assert response.data == (b"" if method == "HEAD" else f"{want}\n".encode())


def test_with_an_address_it_is_filled_in_and_escaped(dav_app: Application) -> None:
    client = dav_app.test_client()
    response = client.get(
        "/.well-known/carddav",
        query_string={"emailaddress": '"a+b x"@Müller.example'},
        headers={"Host": "elsewhere.example"},
    )
    assert response.status_code == 307
    assert response.headers["Location"] == (
        "https://contacts.dav.example/card/%22a%2Bb%20x%22@xn--mller-kva.example/"
    )
    response = client.get("/.well-known/caldav?emailaddress=kim@dav.example")
    assert response.headers["Location"] == "https://dav.dav.example:8443/cal/dav.example/kim/home/"


def test_two_addresses_differ_only_by_the_address(dav_app: Application) -> None:
    client = dav_app.test_client()
    one = client.get("/.well-known/carddav?emailaddress=ann@dav.example").headers["Location"]
    two = client.get("/.well-known/carddav?emailaddress=bob@dav.example").headers["Location"]
    assert one.replace("ann@", "bob@") == two


@pytest.mark.parametrize(
    ("path", "query", "host", "status", "reason"),
    [
        ("/.well-known/caldav", "", "none.example", 404, "no calendar (CalDAV) is configured"),
        ("/.well-known/carddav", "", "none.example", 404, "no address book (CardDAV) is"),
        ("/.well-known/caldav", "", "user.example", 404, "names the user in its host"),
        ("/.well-known/caldav", "", "unknown.example", 404, "no email address given"),
        ("/.well-known/caldav", "emailaddress=nobody", "dav.example", 400, "@"),
        ("/.well-known/caldav", "emailaddress=x@unknown.example", "dav.example", 404, "no mail"),
    ],
)
def test_refusals_say_why(
    dav_app: Application, path: str, query: str, host: str, status: int, reason: str
) -> None:
    response = dav_app.test_client().get(path, query_string=query, headers={"Host": host})
    assert response.status_code == status
    assert response.content_type == "text/plain; charset=utf-8"
    assert reason in response.get_data(as_text=True)
    assert "Location" not in response.headers


def test_the_user_in_the_host_with_an_address(dav_app: Application) -> None:
    response = dav_app.test_client().get("/.well-known/caldav?emailaddress=kim@user.example")
    assert response.headers["Location"] == "https://kim.cal.user.example/"


def test_other_methods_are_refused(dav_app: Application) -> None:
    client = dav_app.test_client()
    response = client.put("/.well-known/caldav", headers={"Host": "dav.example"})
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, HEAD, OPTIONS, PROPFIND"
    assert client.options("/.well-known/carddav").headers["Allow"] == (
        "GET, HEAD, OPTIONS, PROPFIND"
    )


def zone_of(capsys: pytest.CaptureFixture[str], folder: str, domain: str) -> dns.zone.Zone:
    assert main(["dns", domain, "--domains", folder]) == 0
    out = capsys.readouterr().out
    return dns.zone.from_text(out, origin=domain + ".", relativize=False, check_origin=False)


def test_dns_names_each_base(dav_app: Application, capsys: pytest.CaptureFixture[str]) -> None:
    folder = str(dav_app.service.settings.domains)
    z = zone_of(capsys, folder, "xn--mller-kva.example")
    assert {k: v for k, v in records(z, "SRV").items() if "dav" in k} == {
        "_caldavs._tcp.xn--mller-kva.example.": ["0 0 8443 dav.xn--mller-kva.example."],
        "_carddavs._tcp.xn--mller-kva.example.": ["0 0 443 contacts.dav.example."],
    }
    assert {k: v for k, v in records(z, "TXT").items() if "dav" in k} == {
        "_caldavs._tcp.xn--mller-kva.example.": ['"path=/cal/xn--mller-kva.example/"'],
        "_carddavs._tcp.xn--mller-kva.example.": ['"path=/card/"'],
    }


def test_dns_without_a_base(dav_app: Application, capsys: pytest.CaptureFixture[str]) -> None:
    """The user in the host: no record, and a note why; http: RFC 6764's _carddav."""
    folder = str(dav_app.service.settings.domains)
    assert main(["dns", "user.example", "--domains", folder]) == 0
    out = capsys.readouterr().out
    assert "; calendar.url names the user in its host: no DNS record can name it" in out
    z = dns.zone.from_text(out, origin="user.example.", relativize=False, check_origin=False)
    assert [k for k in records(z, "SRV") if "dav" in k] == ["_carddav._tcp.user.example."]
    dav_txt = {name: data for name, data in records(z, "TXT").items() if "dav" in name}
    assert dav_txt == {"_carddav._tcp.user.example.": ['"path=/"']}
    assert main(["dns", "none.example", "--domains", folder]) == 0
    assert "RFC 6764" not in capsys.readouterr().out
