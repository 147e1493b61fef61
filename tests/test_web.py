"""The HTTP interface through the test client: selection, formats, errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from lxml import etree
from werkzeug.test import Client

from autoconf.app import Application
from autoconf.render import autodiscover
from tests.conftest import DATA

NS = {"r": autodiscover.NS_RESPONSE, "o": autodiscover.NS_OUTLOOK_RESPONSE}
AUTOCONFIG_PATHS = ["/mail/config-v1.1.xml", "/.well-known/autoconfig/mail/config-v1.1.xml"]
POX = (DATA / "pox-request.xml").read_bytes()


def xml(response: object) -> etree._Element:
    return etree.fromstring(response.data)  # type: ignore[attr-defined]


def pox_error(response: object) -> str:
    codes = xml(response).xpath("r:Response/r:Error/r:ErrorCode/text()", namespaces=NS)
    assert len(codes) == 1
    return str(codes[0])


# The IMAP and POP3 servers' user names (ActiveSync's URL server, 1.2, has one too).
MAIL_USERNAMES = "//incomingServer[@type='imap' or @type='pop3']/username/text()"


@pytest.mark.parametrize("path", AUTOCONFIG_PATHS)
def test_autoconfig_by_address(client: Client, path: str) -> None:
    response = client.get(path, query_string={"emailaddress": "o'brien@Example.NET"})
    assert response.status_code == 200
    assert response.content_type == "text/xml; charset=utf-8"
    root = xml(response)
    assert root.xpath(MAIL_USERNAMES) == ["o'brien@example.net"] * 2
    assert root.findtext("emailProvider/incomingServer/hostname") == "imap.example.com"


@pytest.mark.parametrize(
    "address",
    ["x@müller.example", "x@xn--mller-kva.example", "x@MÜLLER.example.", "x@Shop.Example"],
)
def test_domain_forms_are_one_domain(client: Client, address: str) -> None:
    response = client.get(AUTOCONFIG_PATHS[0], query_string={"emailaddress": address})
    assert response.status_code == 200
    assert xml(response).find("emailProvider").get("id") == "hosting.example.org"
    assert xml(response).xpath("//incomingServer/username/text()") == ["x"]


@pytest.mark.parametrize(
    "host", ["autoconfig.example.com", "example.com", "AUTOCONFIG.example.com:80"]
)
def test_autoconfig_by_host_fills_only_the_domain(client: Client, host: str) -> None:
    response = client.get(AUTOCONFIG_PATHS[1], headers={"Host": host})
    assert response.status_code == 200
    root = xml(response)
    assert root.find("emailProvider").get("id") == "example.com"
    assert root.xpath(MAIL_USERNAMES) == ["%EMAILADDRESS%"] * 2


@pytest.mark.parametrize("host", ["autoconfig.müller.test", "autoconfig.xn--mller-kva.test"])
def test_one_login_name_whether_or_not_the_address_was_sent(
    make_app: Callable[..., Application], host: str
) -> None:
    """A Unicode domain: the same user name for the address and for the Host alone,
    once the client has put in the local part (the A-label, lower case)."""
    files = {
        "m.yaml": "domains: [müller.test]\n"
        "incoming: [{type: imap, host: imap.example.com, security: ssl}]\n"
        "outgoing: [{host: smtp.example.com, security: ssl}]\n"
    }
    client = make_app(files).test_client()
    path = AUTOCONFIG_PATHS[0]
    by_host = xml(client.get(path, headers={"Host": host.encode("idna").decode()}))
    by_address = xml(client.get(path, query_string={"emailaddress": "Anna@Müller.test"}))
    template = by_host.xpath("//incomingServer/username/text()")[0]
    assert template.replace("%EMAILLOCALPART%", "Anna") == "Anna@xn--mller-kva.test"
    assert by_address.xpath("//incomingServer/username/text()")[0] == "Anna@xn--mller-kva.test"


def test_forwarded_host_only_when_trusted(make_app: Callable[..., Application]) -> None:
    files = {"a.yaml": (DATA / "examples" / "example.com.yaml").read_text()}
    headers = {"Host": "127.0.0.1:8080", "X-Forwarded-Host": "autoconfig.example.com"}
    untrusted = make_app(files).test_client().get(AUTOCONFIG_PATHS[0], headers=headers)
    assert untrusted.status_code == 404
    trusted = make_app(files, proxy_hops=1).test_client().get(AUTOCONFIG_PATHS[0], headers=headers)
    assert trusted.status_code == 200
    assert xml(trusted).find("emailProvider").get("id") == "example.com"


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ({"emailaddress": "nobody"}, 400),
        ({"emailaddress": "a@b@example.com"}, 400),
        ({"emailaddress": "a" * 10_000 + "@example.com"}, 400),
        ({"emailaddress": "a@unknown.example"}, 404),
        ({}, 404),  # the test client's Host is localhost: no domain
    ],
)
def test_autoconfig_errors(client: Client, query: dict[str, str], status: int) -> None:
    response = client.get(AUTOCONFIG_PATHS[0], query_string=query)
    assert response.status_code == status
    assert response.content_type.startswith("text/plain")
    reason = response.get_data(as_text=True)
    assert reason.count("\n") == 1 and len(reason) < 200


@pytest.mark.parametrize(
    "path",
    [
        "/autodiscover/autodiscover.xml",
        "/Autodiscover/Autodiscover.xml",
        "/AUTODISCOVER/AUTODISCOVER.XML",
    ],
)
def test_pox_any_letter_case(client: Client, path: str) -> None:
    response = client.post(path, data=POX, headers={"Authorization": "Basic YWxpY2U6c2VjcmV0"})
    assert response.status_code == 200
    assert response.content_type == "text/xml; charset=utf-8"
    root = xml(response)
    types = root.xpath("o:Response/o:Account/o:Protocol/o:Type/text()", namespaces=NS)
    assert types == ["IMAP", "POP3", "SMTP", "SMTP"]
    logins = root.xpath("o:Response/o:Account/o:Protocol/o:LoginName/text()", namespaces=NS)
    assert set(logins) == {"alice@example.com"}


def test_pox_errors(client: Client) -> None:
    path = "/autodiscover/autodiscover.xml"
    get = client.get(path)  # POST only: 405 with the error document, so a client moves on
    assert (get.status_code, pox_error(get)) == (405, "600")
    assert get.headers["Allow"] == "OPTIONS, POST"
    bad = client.post(path, data=b"<not-xml")
    assert (bad.status_code, pox_error(bad)) == (200, "600")
    other = POX.replace(b"responseschema/2006a", b"responseschema/2099")
    assert pox_error(client.post(path, data=other)) == "601"
    unknown = client.post(path, data=POX.replace(b"example.com", b"unknown.example"))
    assert (unknown.status_code, pox_error(unknown)) == (404, "500")
    big = client.post(path, data=POX + b" " * (64 * 1024))
    assert big.status_code == 413
    assert pox_error(big) == "600"
    malformed = client.post(path, data=POX.replace(b"alice@example.com", b"alice"))
    assert (malformed.status_code, pox_error(malformed)) == (200, "600")


@pytest.mark.parametrize(
    "url",
    [
        "/autodiscover/autodiscover.json?Email=a@example.com&Protocol=AutodiscoverV1",
        "/autodiscover/autodiscover.json?email=a@example.com&protocol=autodiscoverv1",
        "/Autodiscover/Autodiscover.json/v1.0/a@example.com?Protocol=AUTODISCOVERV1",
    ],
)
def test_autodiscover_json(client: Client, url: str) -> None:
    response = client.get(url, headers={"Host": "autodiscover.example.com"})
    assert response.status_code == 200
    assert response.content_type == "application/json"
    assert json.loads(response.data) == {
        "Protocol": "AutodiscoverV1",
        "Url": "https://autodiscover.example.com/Autodiscover/Autodiscover.xml",
    }


def test_autodiscover_json_public_host(make_app: Callable[..., Application]) -> None:
    files = {"a.yaml": (DATA / "examples" / "example.com.yaml").read_text()}
    client = make_app(files, public_host="autoconf.hoster.example").test_client()
    answer = client.get(
        "/autodiscover/autodiscover.json?Email=a@example.com&Protocol=AutodiscoverV1"
    )
    assert json.loads(answer.data)["Url"] == (
        "https://autoconf.hoster.example/Autodiscover/Autodiscover.xml"
    )


def json_url(client: Client, address: str, **headers: str) -> str:
    answer = client.get(
        "/autodiscover/autodiscover.json",
        query_string={"Email": address, "Protocol": "AutodiscoverV1"},
        headers=headers,
    )
    assert answer.status_code == 200, answer.data
    return str(json.loads(answer.data)["Url"])


@pytest.mark.parametrize(
    ("host", "url_host"),
    [
        ("autodiscover.example.com", "autodiscover.example.com"),
        ("AUTOCONFIG.Example.com.", "autoconfig.example.com"),
        ("example.com", "example.com"),
        ("autodiscover.example.net", "autodiscover.example.net"),  # served by the same file
        ("autodiscover.shop.example", "autodiscover.shop.example"),  # served by another
        ("autodiscover.x.customers.example.org", "autodiscover.x.customers.example.org"),
        ("autodiscover.example.com:8443", "autodiscover.example.com"),  # http: no port
        ("evil.example", "autodiscover.example.com"),
        ("autodiscover.evil.example", "autodiscover.example.com"),
        ("autodiscover.autoconfig.example.com", "autodiscover.example.com"),
        ("www.example.com", "autodiscover.example.com"),
        ("localhost", "autodiscover.example.com"),
        ("127.0.0.1:8080", "autodiscover.example.com"),
        ("[::1]", "autodiscover.example.com"),
    ],
)
def test_autodiscover_json_points_only_at_a_served_host(
    client: Client, host: str, url_host: str
) -> None:
    """Without AUTOCONF_PUBLIC_HOST, the Url names the Host only where it is a served
    domain or its autoconfig./autodiscover. name; else the provider's own name."""
    url = json_url(client, "a@example.com", Host=host)
    assert url == f"https://{url_host}/Autodiscover/Autodiscover.xml"


def test_autodiscover_json_url_through_a_proxy(make_app: Callable[..., Application]) -> None:
    files = {"a.yaml": (DATA / "examples" / "example.com.yaml").read_text()}
    client = make_app(files, proxy_hops=1).test_client()
    forwarded = {"Host": "127.0.0.1:8080", "X-Forwarded-Proto": "https"}
    # An HTTPS port that is not 443 is kept; the default one is not written.
    served = {**forwarded, "X-Forwarded-Host": "autodiscover.example.com:8443"}
    assert json_url(client, "a@example.com", **served).startswith(
        "https://autodiscover.example.com:8443/"
    )
    served = {
        **forwarded,
        "X-Forwarded-Host": "autodiscover.example.com",
        "X-Forwarded-Port": "443",
    }
    assert json_url(client, "a@example.com", **served).startswith(
        "https://autodiscover.example.com/"
    )
    spoofed = {**forwarded, "X-Forwarded-Host": "autodiscover.evil.example"}
    assert json_url(client, "a@example.net", **spoofed).startswith(
        "https://autodiscover.example.net/"
    )


def test_a_catch_all_does_not_make_every_host_a_served_one(
    make_app: Callable[..., Application],
) -> None:
    catch_all = (
        "domains: ['*', listed.example]\n"
        "incoming: [{type: imap, host: imap.hoster.example, security: ssl}]\n"
        "outgoing: [{type: smtp, host: smtp.hoster.example, security: ssl}]\n"
    )
    client = make_app({"all.yaml": catch_all}).test_client()
    assert json_url(client, "a@customer.example", Host="autodiscover.evil.example") == (
        "https://autodiscover.customer.example/Autodiscover/Autodiscover.xml"
    )
    assert json_url(client, "a@customer.example", Host="autoconfig.listed.example") == (
        "https://autoconfig.listed.example/Autodiscover/Autodiscover.xml"
    )


@pytest.mark.parametrize(
    ("url", "status", "code"),
    [
        (
            "/autodiscover/autodiscover.json?Email=a@example.com&Protocol=Ews",
            400,
            "InvalidProtocol",
        ),
        ("/autodiscover/autodiscover.json?Email=a@example.com", 400, "InvalidProtocol"),
        (
            "/autodiscover/autodiscover.json?Email=a@example.org&Protocol=ActiveSync",
            400,
            "InvalidProtocol",
        ),
        ("/autodiscover/autodiscover.json?Protocol=AutodiscoverV1", 400, "InvalidRequest"),
        (
            "/autodiscover/autodiscover.json?Email=bad&Protocol=AutodiscoverV1",
            400,
            "InvalidRequest",
        ),
        (
            "/autodiscover/autodiscover.json?Email=a@nowhere.example&Protocol=AutodiscoverV1",
            404,
            "NotFound",
        ),
    ],
)
def test_autodiscover_json_errors(client: Client, url: str, status: int, code: str) -> None:
    response = client.get(url)
    assert response.status_code == status
    body = json.loads(response.data)
    assert body["ErrorCode"] == code and body["ErrorMessage"]


def test_healthz_lists_broken_files(make_app: Callable[..., Application]) -> None:
    good = (DATA / "examples" / "example.com.yaml").read_text()
    app = make_app({"good.yaml": good, "bad.yaml": "domains: [x.example]\nincoming: 5\n"})
    body = json.loads(app.test_client().get("/healthz").data)
    assert body["status"] == "degraded"
    assert body["providers"] == 1 and body["domains"] == 2
    assert [b["file"].rsplit("/", 1)[1] for b in body["broken"]] == ["bad.yaml"]
    assert any(":2: incoming: expected a list" in e for e in body["broken"][0]["errors"])
    # The good file serves beside the broken one.
    ok = app.test_client().get(AUTOCONFIG_PATHS[0], query_string={"emailaddress": "a@example.com"})
    assert ok.status_code == 200


def test_unknown_paths_and_methods_are_4xx(client: Client) -> None:
    assert client.get("/nothing-here").status_code == 404
    assert client.post(AUTOCONFIG_PATHS[0]).status_code == 405
    assert client.put("/autodiscover/autodiscover.xml").status_code == 405


def test_every_answer_carries_the_security_headers(client: Client) -> None:
    answers = [
        client.get(AUTOCONFIG_PATHS[0], query_string={"emailaddress": "a@example.com"}),
        client.get(AUTOCONFIG_PATHS[0], query_string={"emailaddress": "bad"}),
        client.post("/autodiscover/autodiscover.xml", data=POX),
        client.get("/autodiscover/autodiscover.json?Email=a@example.com&Protocol=x"),
        client.get("/healthz"),
        client.get("/nothing-here"),
        client.delete("/healthz"),
    ]
    for answer in answers:
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert "default-src 'none'" in answer.headers["Content-Security-Policy"]
        assert answer.headers["Cache-Control"] == "no-store"
        assert "Server" not in answer.headers or "/" not in answer.headers["Server"]


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "POST"])
@pytest.mark.parametrize(
    "path", ["/", "/healthz", "/mobileconfig", AUTOCONFIG_PATHS[0], "/admin", "/reload"]
)
def test_no_write_or_admin_endpoint(client: Client, method: str, path: str) -> None:
    assert client.open(path, method=method).status_code in (404, 405)


def test_healthz_tells_the_internet_nothing_but_status(
    make_app: Callable[..., Application],
) -> None:
    good = (DATA / "examples" / "example.com.yaml").read_text()
    secret = "root:x:0:0:root:/root:/bin/bash"
    app = make_app({"good.yaml": good, "bad.yaml": f"domains: ['{secret}']\nincoming: 5\n"})
    client = app.test_client()
    public = {"status", "providers", "domains", "broken_files", "contested_domains"}
    for environ in (
        {"REMOTE_ADDR": "203.0.113.5"},  # from elsewhere
        {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.5"},  # through a proxy
        {"REMOTE_ADDR": "::1", "HTTP_FORWARDED": "for=203.0.113.5"},
    ):
        answer = client.get("/healthz", environ_base=environ)
        body = json.loads(answer.data)
        assert set(body) == public, environ
        assert body["status"] == "degraded" and body["broken_files"] == 1
        assert secret not in answer.text and "bad.yaml" not in answer.text
    operator = json.loads(client.get("/healthz", environ_base={"REMOTE_ADDR": "127.0.0.1"}).data)
    assert set(operator) > public
    assert [Path(b["file"]).name for b in operator["broken"]] == ["bad.yaml"]
