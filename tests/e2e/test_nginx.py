"""The deployed nginx site in front of the service: TLS, redirects, forwarded names."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
import urllib3
import yaml
from lxml import etree

from autoconf.certificates import PUBLIC
from autoconf.render.page import qr_svg
from tests.conftest import DATA
from tests.e2e.conftest import Front, behind_nginx
from tests.e2e.nginx import PUBLIC_HOST

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


def test_the_public_host_reaches_the_service(front: Front) -> None:
    """AUTOCONF_PUBLIC_HOST: Outlook's SRV target, the JSON answer's URL, the page and
    its profile link. Over HTTPS everything reaches the service, with the public
    host's own certificate; over plain HTTP the page is redirected."""
    page = https(front, PUBLIC_HOST, "GET", "/?emailaddress=a@ssl.test.example")
    assert page.status == 200 and page.headers["Content-Type"].startswith("text/html")
    assert b"mobileconfig?emailaddress=a%40ssl.test.example" in page.data
    profile = https(front, PUBLIC_HOST, "GET", "/mobileconfig?emailaddress=a@ssl.test.example")
    assert profile.status == 200
    assert profile.headers["Content-Type"] == "application/x-apple-aspen-config"
    json_path = "/autodiscover/autodiscover.json?Email=a@ssl.test.example&Protocol=AutodiscoverV1"
    assert https(front, PUBLIC_HOST, "GET", json_path).status == 200
    pox = https(
        front,
        PUBLIC_HOST,
        "POST",
        "/Autodiscover/Autodiscover.xml",
        body=POX,
        headers={"Content-Type": "text/xml; charset=utf-8"},
    )
    assert pox.status == 200
    assert etree.fromstring(pox.data).xpath("//o:Protocol/o:Type/text()", namespaces=NS)
    assert https(front, PUBLIC_HOST, "GET", "/healthz").status == 200
    assert https(front, PUBLIC_HOST, "GET", "/metrics").status == 404
    redirected = http(front, PUBLIC_HOST, "GET", "/")
    assert redirected.status == 302
    assert redirected.headers["Location"] == f"https://{PUBLIC_HOST}/"
    autoconfig = http(
        front, PUBLIC_HOST, "GET", "/mail/config-v1.1.xml?emailaddress=b@ssl.test.example"
    )
    assert autoconfig.status == 200


# --- Many certificates: nginx picks each by SNI --------------------------------------

SHARDED_DOMAINS = [f"shard{i}.test.example" for i in range(150)]


@pytest.fixture(scope="module")
def sharded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Front]:
    """150 domains (300 names: several certificates) behind the site, and the
    service told its public host, as docs/deploy.md sets it up."""
    base = tmp_path_factory.mktemp("sharded")
    folder = base / "domains"
    folder.mkdir()
    (folder / "hoster.yaml").write_text(
        yaml.safe_dump(
            {
                "domains": SHARDED_DOMAINS,
                "incoming": [{"type": "imap", "host": "imap.test.example", "security": "ssl"}],
                "outgoing": [{"type": "smtp", "host": "smtp.test.example", "security": "ssl"}],
            }
        ),
        encoding="utf-8",
    )
    with behind_nginx(
        base, folder, ["shard0.test.example"], ["--public-host", PUBLIC_HOST]
    ) as serving:
        yield serving


def served_names(front: Front, name: str) -> set[str]:
    """The names of the certificate nginx shows a client that asks for ``name``
    (verified against the test CA for ``name``)."""
    context = ssl.create_default_context(cafile=str(front.nginx.ca_file))
    with socket.create_connection(("127.0.0.1", front.nginx.https_port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=name) as tls:
            cert = tls.getpeercert()
    assert cert is not None
    return {value for kind, value in cert["subjectAltName"] if kind == "DNS"}


def test_nginx_shows_each_name_the_certificate_that_holds_it(sharded: Front) -> None:
    certificates = sharded.nginx.certificates
    assert len(certificates) > 3 and set(certificates[PUBLIC]) == {PUBLIC_HOST}
    for name, hosts in certificates.items():
        for host in (hosts[0], hosts[-1]):
            assert served_names(sharded, host) == set(hosts), (name, host)
            if host != PUBLIC_HOST:
                domain = host.split(".", 1)[1]
                answer = https(sharded, host, "GET", "/mail/config-v1.1.xml")
                assert answer.status == 200, host
                assert etree.fromstring(answer.data).xpath("//domain/text()") == [domain]


def test_the_urls_handed_out_name_the_public_host_and_reach_the_service(
    sharded: Front,
) -> None:
    address = "x@shard7.test.example"
    answer = https(
        sharded,
        "autodiscover.shard7.test.example",
        "GET",
        f"/autodiscover/autodiscover.json?Email={address}&Protocol=AutodiscoverV1",
    )
    url = answer.json()["Url"]
    assert url == f"https://{PUBLIC_HOST}/Autodiscover/Autodiscover.xml"
    pox = https(
        sharded,
        PUBLIC_HOST,
        "POST",
        url.removeprefix(f"https://{PUBLIC_HOST}"),
        body=POX.replace(b"a@ssl.test.example", address.encode()),
        headers={"Content-Type": "text/xml; charset=utf-8"},
    )
    assert pox.status == 200
    servers = etree.fromstring(pox.data).xpath("//o:Protocol/o:Server/text()", namespaces=NS)
    assert servers == ["imap.test.example", "smtp.test.example"]
    # The page's QR code names the profile on the public host; its link, the page's own.
    page = https(sharded, PUBLIC_HOST, "GET", f"/?emailaddress={address}")
    assert page.status == 200
    profile_path = f"/mobileconfig?emailaddress={quote(address)}"
    assert str(qr_svg(f"https://{PUBLIC_HOST}{profile_path}")).encode() in page.data
    assert f'href="{profile_path[1:]}"'.encode() in page.data
    profile = https(sharded, PUBLIC_HOST, "GET", profile_path)
    assert profile.status == 200
    assert profile.headers["Content-Type"] == "application/x-apple-aspen-config"
