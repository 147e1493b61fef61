"""The deployed nginx site in front of the service: TLS, redirects, forwarded names."""

from __future__ import annotations

from typing import Any

import urllib3
from lxml import etree

from tests.conftest import DATA
from tests.e2e.conftest import Front

POX = (DATA / "pox-request.xml").read_bytes().replace(b"alice@example.com", b"a@ssl.test.example")
NS = {"o": "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"}


def https(front: Front, host: str, method: str, path: str, **kwargs: Any) -> Any:
    """A request to nginx's TLS port as a client would make it: SNI, Host, verified chain."""
    pool = urllib3.HTTPSConnectionPool(
        "127.0.0.1",
        front.nginx.https_port,
        server_hostname=host,
        assert_hostname=host,
        ca_certs=str(front.nginx.ca_file),
        cert_reqs="CERT_REQUIRED",
        retries=False,
        timeout=10,
    )
    headers = {"Host": host, **kwargs.pop("headers", {})}
    return pool.request(method, path, headers=headers, redirect=False, **kwargs)


def http(front: Front, host: str, method: str, path: str, **kwargs: Any) -> Any:
    pool = urllib3.HTTPConnectionPool("127.0.0.1", front.nginx.http_port, retries=False, timeout=10)
    headers = {"Host": host, **kwargs.pop("headers", {})}
    return pool.request(method, path, headers=headers, redirect=False, **kwargs)


def test_autoconfig_over_https_picks_the_domain_from_the_forwarded_host(front: Front) -> None:
    answer = https(front, "autoconfig.ssl.test.example", "GET", "/mail/config-v1.1.xml")
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "text/xml; charset=utf-8"
    root = etree.fromstring(answer.data)
    assert root.xpath("//domain/text()") == ["ssl.test.example"]


def test_autoconfig_over_plain_http_is_answered(front: Front) -> None:
    for host, path in [
        ("autoconfig.starttls.test.example", "/mail/config-v1.1.xml"),
        ("starttls.test.example", "/.well-known/autoconfig/mail/config-v1.1.xml"),
    ]:
        answer = http(front, host, "GET", path + "?emailaddress=b@starttls.test.example")
        assert answer.status == 200, (host, path)
        root = etree.fromstring(answer.data)
        assert root.xpath("//incomingServer/username/text()") == ["b"]


def test_everything_else_over_http_is_redirected_to_https(front: Front) -> None:
    for host, method, path in [
        ("autodiscover.ssl.test.example", "GET", "/Autodiscover/Autodiscover.xml"),
        ("autodiscover.ssl.test.example", "POST", "/autodiscover/autodiscover.xml"),
        ("autoconfig.ssl.test.example", "GET", "/healthz"),
        ("ssl.test.example", "GET", "/anything"),
    ]:
        answer = http(front, host, method, path)
        assert answer.status == 302, (host, method, path)
        assert answer.headers["Location"] == f"https://{host}{path}"


def test_pox_on_both_names_any_letter_case(front: Front) -> None:
    for host, path in [
        ("autodiscover.ssl.test.example", "/autodiscover/autodiscover.xml"),
        ("ssl.test.example", "/AutoDiscover/AutoDiscover.xml"),
    ]:
        answer = https(
            front,
            host,
            "POST",
            path,
            body=POX,
            headers={
                "Content-Type": "text/xml; charset=utf-8",
                "Authorization": "Basic YTpodW50ZXIy",
            },
        )
        assert answer.status == 200, (host, path)
        root = etree.fromstring(answer.data)
        assert root.xpath("//o:Protocol/o:Type/text()", namespaces=NS) == ["IMAP", "SMTP"]


def test_bare_domain_serves_only_the_autoconf_paths(front: Front) -> None:
    assert https(front, "ssl.test.example", "GET", "/healthz").status == 404
    assert https(front, "ssl.test.example", "GET", "/mail/config-v1.1.xml").status == 404


def test_json_url_names_the_public_https_host(front: Front) -> None:
    answer = https(
        front,
        "autodiscover.ssl.test.example",
        "GET",
        "/autodiscover/autodiscover.json?Email=a@ssl.test.example&Protocol=AutodiscoverV1",
    )
    assert answer.status == 200
    url = answer.json()["Url"]
    assert url.startswith("https://autodiscover.ssl.test.example")
    assert url.endswith("/Autodiscover/Autodiscover.xml")


def test_bodies_over_64_kib_stop_at_nginx(front: Front) -> None:
    answer = https(
        front,
        "autodiscover.ssl.test.example",
        "POST",
        "/autodiscover/autodiscover.xml",
        body=POX + b" " * 70_000,
    )
    assert answer.status == 413
