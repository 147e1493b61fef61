"""End to end: the real ``mail-autoconf serve`` (gunicorn, two workers), asked over HTTP.

One service for the module, on a free port of 127.0.0.1, serving a copy of the
example domains plus one broken file; it is stopped by its PID. Every answer is
recorded, and none may be a 5xx (docs/http.md#errors). Expected values are read from the
YAML files themselves, the way an admin would check them.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import idna
import pytest
import requests
import yaml
from lxml import etree

from tests.e2e.processes import start_service
from tests.helpers import BROKEN_YAML, SPEC_DEFAULT_PORTS

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "tests" / "data" / "examples"  # a copy of domains/, which an admin may change
REQUEST_TIMEOUT = 10.0

NS_RESPONSE = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
NS_OUTLOOK_RESPONSE = (
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
)
NS_OUTLOOK_REQUEST = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
NS_MOBILESYNC_REQUEST = (
    "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/requestschema/2006"
)
NS_MOBILESYNC_RESPONSE = (
    "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006"
)
NS = {"r": NS_RESPONSE, "a": NS_OUTLOOK_RESPONSE}
POX_PATH = "/autodiscover/autodiscover.xml"
JSON_PATH = "/autodiscover/autodiscover.json"
PLAIN_ADDRESS = re.compile(r"[^@\s\x00]+@[^@\s\x00]+\.[^@\s\x00]+")
AUTOCONFIG_PATHS = ("/mail/config-v1.1.xml", "/.well-known/autoconfig/mail/config-v1.1.xml")

# A file with three errors that claims a domain of its own: it must be skipped,
# listed by /healthz, and its domain not served, while the other files serve.
BROKEN_NAME = "zz-broken.yaml"
BROKEN_DOMAIN = "broken.example"

SOCKET_TYPES = {"ssl": "SSL", "starttls": "STARTTLS", "none": "plain"}
POX_SSL = {"ssl": ("on", "SSL"), "starttls": ("on", "TLS"), "none": ("off", "None")}
POX_TYPES = {"imap": "IMAP", "pop3": "POP3", "smtp": "SMTP"}
NO_LOGIN_AUTH = {"none", "client-IP-address"}


# ---------------------------------------------------------------------------
# What the domain files say


def _a_label(domain: str) -> str:
    return idna.encode(domain.rstrip(".").lower(), uts46=True).decode("ascii")


def _load_examples() -> list[dict[str, Any]]:
    providers = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        providers.append(yaml.safe_load(path.read_text(encoding="utf-8")))
    return providers


PROVIDERS = _load_examples()


def provider_for(domain: str) -> dict[str, Any]:
    """The example provider serving ``domain`` (an A-label), exact names before wildcards."""
    for provider in PROVIDERS:
        if domain in {_a_label(d) for d in provider["domains"] if not d.startswith("*")}:
            return provider
    for provider in PROVIDERS:
        for pattern in provider["domains"]:
            if pattern.startswith("*.") and domain.endswith("." + _a_label(pattern[2:])):
                return provider
    raise AssertionError(f"no example file serves {domain}")


def _fill(text: str, local: str | None, domain: str) -> str:
    """Placeholders as the service fills them: what the request tells, and without an
    address the domain part of the whole address of an IDN domain (docs/domain-files.md)."""
    text = text.replace("%EMAILDOMAIN%", domain)
    if local is not None or "xn--" in domain:
        text = text.replace("%EMAILADDRESS%", f"{local or '%EMAILLOCALPART%'}@{domain}")
    if local is not None:
        text = text.replace("%EMAILLOCALPART%", local)
    return text


def expected_servers(
    provider: dict[str, Any], kind: str, local: str | None, domain: str
) -> list[dict[str, Any]]:
    """The servers of ``kind`` (incoming/outgoing) a client should see, in file order."""
    servers = provider[kind]
    tls = [s for s in servers if s["security"] != "none"]
    result = []
    for server in tls or servers:
        server_type = server.get("type", "smtp")
        auth = server.get("auth", "password-cleartext")
        auth = [auth] if isinstance(auth, str) else list(auth)
        result.append(
            {
                "type": server_type,
                "hostname": _fill(server["host"], local, domain),
                "port": server.get("port", SPEC_DEFAULT_PORTS[(server_type, server["security"])]),
                "security": server["security"],
                "username": _fill(server.get("username", "%EMAILADDRESS%"), local, domain),
                "auth": auth,
                "pop3": server.get("pop3"),
            }
        )
    return result


def split_address(address: str) -> tuple[str, str]:
    local, _, domain = address.rpartition("@")
    return local, _a_label(domain)


# ---------------------------------------------------------------------------
# The running service


@dataclass
class Service:
    base: str
    port: int
    folder: Path
    log: Path
    process: subprocess.Popen[bytes]
    statuses: list[tuple[str, str, int]] = field(default_factory=list)
    # Everything that must never reach the log.
    secrets: set[str] = field(default_factory=set)

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", REQUEST_TIMEOUT)
        kwargs.setdefault("allow_redirects", False)
        response = requests.request(method, self.base + path, **kwargs)
        self.statuses.append((method, path, response.status_code))
        assert response.status_code < 500, (
            f"{method} {path} answered {response.status_code}: {response.text[:500]}"
        )
        return response

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def autoconfig(
        self, address: str | None, path: str = AUTOCONFIG_PATHS[0], **kwargs: Any
    ) -> requests.Response:
        if address is not None:
            if PLAIN_ADDRESS.fullmatch(address):
                self.secrets.add(address)
            kwargs["params"] = {"emailaddress": address}
        return self.get(path, **kwargs)

    def pox(self, body: bytes, path: str = POX_PATH, **kwargs: Any) -> requests.Response:
        headers = {"Content-Type": "text/xml; charset=utf-8", **kwargs.pop("headers", {})}
        return self.post(path, data=body, headers=headers, **kwargs)

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    base_dir = tmp_path_factory.mktemp("serve")
    folder = base_dir / "domains"
    shutil.copytree(EXAMPLES, folder)
    (folder / BROKEN_NAME).write_text(BROKEN_YAML, encoding="utf-8")
    started, port = start_service(folder, base_dir)
    try:
        yield Service(f"http://127.0.0.1:{port}", port, folder, started.log, started.process)
    finally:
        started.stop()


# ---------------------------------------------------------------------------
# Parsing answers


def parse_xml(response: requests.Response) -> etree._Element:
    assert response.headers["Content-Type"].startswith("text/xml"), response.headers
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    return etree.fromstring(response.content, parser)


def autoconfig_servers(root: etree._Element, kind: str) -> list[dict[str, Any]]:
    servers = []
    # The mail servers; 1.2's URL servers (ActiveSync here) have no host or port.
    for element in root.xpath(f"/clientConfig/emailProvider/{kind}Server[hostname]"):
        pop3 = element.find("pop3")
        servers.append(
            {
                "type": element.get("type"),
                "hostname": element.findtext("hostname"),
                "port": int(element.findtext("port")),
                "socketType": element.findtext("socketType"),
                "username": element.findtext("username"),
                "auth": [a.text for a in element.findall("authentication")],
                "pop3": None if pop3 is None else {c.tag: c.text for c in pop3},
            }
        )
    return servers


def pox_protocols(root: etree._Element) -> list[dict[str, str | None]]:
    protocols = root.xpath("/r:Autodiscover/a:Response/a:Account/a:Protocol", namespaces=NS)
    return [{etree.QName(c).localname: c.text for c in p} for p in protocols]


def pox_error(response: requests.Response) -> tuple[int, str, str]:
    root = parse_xml(response)
    errors = root.xpath("/r:Autodiscover/r:Response/r:Error", namespaces=NS)
    assert len(errors) == 1, response.text
    error = errors[0]
    assert error.get("Time") and error.get("Id"), response.text
    code = error.findtext("r:ErrorCode", namespaces=NS)
    message = error.findtext("r:Message", namespaces=NS)
    debug = error.findtext("r:DebugData", namespaces=NS)
    assert code is not None and message is not None and debug is not None, response.text
    return int(code), message, debug


def pox_body(
    email: str | None,
    schema: str | None = NS_OUTLOOK_RESPONSE,
    namespace: str = NS_OUTLOOK_REQUEST,
) -> bytes:
    root = etree.Element(f"{{{namespace}}}Autodiscover", nsmap={None: namespace})  # type: ignore[dict-item]
    request = etree.SubElement(root, f"{{{namespace}}}Request")
    if email is not None:
        etree.SubElement(request, f"{{{namespace}}}EMailAddress").text = email
    if schema is not None:
        etree.SubElement(request, f"{{{namespace}}}AcceptableResponseSchema").text = schema
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")


# ---------------------------------------------------------------------------
# /healthz


def test_healthz_counts_live_domains_and_lists_the_broken_file(service: Service) -> None:
    response = service.get("/healthz")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    health = json.loads(response.content)
    assert health["status"] != "ok"  # one file is broken
    assert health["providers"] == len(PROVIDERS)
    assert health["domains"] == sum(len(p["domains"]) for p in PROVIDERS)
    broken = [b for b in health["broken"] if Path(b["file"]).name == BROKEN_NAME]
    assert len(broken) == 1, health["broken"]
    assert len(health["broken"]) == 1, health["broken"]
    errors = broken[0]["errors"]
    # FILE:LINE: path: message, every error of the file.
    assert len(errors) == 3, errors
    located = {}
    for error in errors:
        match = re.fullmatch(r"(?P<file>.+):(?P<line>\d+): (?P<path>[^ ]+): (?P<message>.+)", error)
        assert match, error
        assert Path(match["file"]).name == BROKEN_NAME
        located[match["path"]] = int(match["line"])
    assert located == {
        "incoming[0].port": 9,
        "outgoing[0].host": 11,
        "outgoing[0].hots": 12,
    }


def test_broken_file_domain_is_not_served(service: Service) -> None:
    assert service.autoconfig(f"alice@{BROKEN_DOMAIN}").status_code == 404
    response = service.get(AUTOCONFIG_PATHS[0], headers={"Host": f"autoconfig.{BROKEN_DOMAIN}"})
    assert response.status_code == 404


# ---------------------------------------------------------------------------
# Thunderbird autoconfig

GOOD_ADDRESSES = [
    "alice@example.com",
    "Bob.Smith@EXAMPLE.NET",
    "carol@example.org",
    "dave@müller.example",
    "eve@xn--mller-kva.example",
    "frank@shop.example.",
    "gina@a.customers.example.org",
    "o'hara&co@example.org",
]


@pytest.mark.parametrize("path", AUTOCONFIG_PATHS)
@pytest.mark.parametrize("address", GOOD_ADDRESSES)
def test_autoconfig_matches_the_domain_file(service: Service, address: str, path: str) -> None:
    response = service.autoconfig(address, path)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "text/xml; charset=utf-8"
    root = parse_xml(response)
    local, domain = split_address(address)
    provider = provider_for(domain)

    assert root.tag == "clientConfig" and root.get("version") == "1.2"
    assert root.nsmap == {} and not any(e.prefix for e in root.iter(etree.Element))
    assert root.xpath("//password") == []
    (email_provider,) = root.xpath("/clientConfig/emailProvider")
    assert email_provider.get("id") == provider["provider"]["id"]
    assert email_provider.findtext("displayName") == provider["provider"]["name"]
    assert email_provider.findtext("displayShortName") == provider["provider"]["short_name"]
    assert domain in email_provider.xpath("domain/text()")

    for kind in ("incoming", "outgoing"):
        got = autoconfig_servers(root, kind)
        want = expected_servers(provider, kind, local, domain)
        assert [s["type"] for s in got] == [s["type"] for s in want]
        assert [s["hostname"] for s in got] == [s["hostname"] for s in want]
        assert [s["port"] for s in got] == [s["port"] for s in want]
        assert [s["socketType"] for s in got] == [SOCKET_TYPES[s["security"]] for s in want]
        assert [s["username"] for s in got] == [s["username"] for s in want]
        assert [s["auth"] for s in got] == [s["auth"] for s in want]
        for got_server, want_server in zip(got, want, strict=True):
            options = want_server["pop3"]
            if options is None:
                assert got_server["pop3"] is None
                continue
            assert got_server["pop3"] == {
                "leaveMessagesOnServer": str(options["leave_messages_on_server"]).lower(),
                "daysToLeaveMessagesOnServer": str(options["days_to_leave_messages_on_server"]),
                "downloadOnBiff": str(options["download_on_biff"]).lower(),
            }

    webmail = provider.get("webmail")
    pages = root.xpath("/clientConfig/webMail/loginPage/@url")
    assert pages == ([webmail["url"]] if webmail else [])
    docs = root.xpath("/clientConfig/emailProvider/documentation")
    assert [d.get("url") for d in docs] == [d["url"] for d in provider.get("documentation", [])]
    for element, doc in zip(docs, provider.get("documentation", []), strict=True):
        assert {d.get("lang"): d.text for d in element.findall("descr")} == doc["text"]


@pytest.mark.parametrize(
    ("host", "domain"),
    [
        ("autoconfig.example.com", "example.com"),
        ("AUTOCONFIG.Example.Net.", "example.net"),
        ("autoconfig.shop.example", "shop.example"),
        ("autodiscover.example.org", "example.org"),
        ("example.org", "example.org"),
        ("autoconfig.xn--mller-kva.example", "xn--mller-kva.example"),
        ("autoconfig.example.com:8443", "example.com"),
    ],
)
def test_autoconfig_without_address_picks_the_domain_from_host(
    service: Service, host: str, domain: str
) -> None:
    response = service.autoconfig(None, headers={"Host": host})
    assert response.status_code == 200, response.text
    root = parse_xml(response)
    provider = provider_for(domain)
    assert root.xpath("/clientConfig/emailProvider/@id") == [provider["provider"]["id"]]
    assert domain in root.xpath("/clientConfig/emailProvider/domain/text()")
    for kind in ("incoming", "outgoing"):
        got = autoconfig_servers(root, kind)
        # Only %EMAILDOMAIN% is known; the other placeholders stay for the client.
        want = expected_servers(provider, kind, None, domain)
        assert [(s["hostname"], s["port"], s["username"]) for s in got] == [
            (s["hostname"], s["port"], s["username"]) for s in want
        ]
        for server in got:
            assert "%EMAILDOMAIN%" not in server["hostname"] + server["username"]


def test_autoconfig_without_address_keeps_unknown_placeholders(service: Service) -> None:
    root = parse_xml(service.autoconfig(None, headers={"Host": "autoconfig.example.com"}))
    assert set(root.xpath("//incomingServer/username/text()")) == {"%EMAILADDRESS%"}
    root = parse_xml(service.autoconfig(None, headers={"Host": "autoconfig.example.org"}))
    assert set(root.xpath("//incomingServer/username/text()")) == {"%EMAILLOCALPART%"}


MALFORMED_ADDRESSES = [
    "no-at-sign",
    "@example.com",
    "alice@",
    "alice@localhost",
    "al ice@example.com",
    "a..b@example.com",
    ".alice@example.com",
    "alice@exa mple.com",
    "alice@-bad-.example.com",
    "alice@example..com",
    "alice@xn--.com",
    "x" * 65 + "@example.com",
    "alice@" + "x" * 300 + ".com",
    "alice\x00@example.com",
    "alice@example.com\x00",
]


@pytest.mark.parametrize("address", MALFORMED_ADDRESSES)
def test_autoconfig_malformed_address_is_400_with_a_reason(service: Service, address: str) -> None:
    response = service.autoconfig(address)
    assert response.status_code == 400, response.text
    assert response.headers["Content-Type"].startswith("text/plain")
    reason = response.text.strip()
    assert reason and "\n" not in reason


@pytest.mark.parametrize("path", AUTOCONFIG_PATHS)
def test_autoconfig_unknown_domain_is_404(service: Service, path: str) -> None:
    assert service.autoconfig("alice@unknown.example", path).status_code == 404
    assert (
        service.autoconfig(None, path, headers={"Host": "autoconfig.unknown.example"}).status_code
        == 404
    )
    # The service's own address names no domain either.
    assert service.autoconfig(None, path).status_code == 404


# ---------------------------------------------------------------------------
# Outlook autodiscover (POX)


@pytest.mark.parametrize(
    "address", ["alice@example.com", "Bob@Example.NET", "carol@example.org", "dave@müller.example"]
)
def test_pox_matches_the_domain_file(service: Service, address: str) -> None:
    service.secrets.add(address)
    response = service.pox(pox_body(address))
    assert response.status_code == 200, response.text
    root = parse_xml(response)
    assert not any(e.prefix for e in root.iter(etree.Element))
    local, domain = split_address(address)
    provider = provider_for(domain)
    smtp_address = root.xpath(
        "/r:Autodiscover/a:Response/a:User/a:AutoDiscoverSMTPAddress/text()", namespaces=NS
    )
    assert smtp_address == [f"{local}@{domain}"]
    assert root.xpath("//a:Account/a:AccountType/text()", namespaces=NS) == ["email"]
    assert root.xpath("//a:Account/a:Action/text()", namespaces=NS) == ["settings"]

    incoming = expected_servers(provider, "incoming", local, domain)
    outgoing = expected_servers(provider, "outgoing", local, domain)
    protocols = pox_protocols(root)
    assert len(protocols) == len(incoming) + len(outgoing)
    for got, want in zip(protocols, incoming + outgoing, strict=True):
        ssl, encryption = POX_SSL[want["security"]]
        assert got["Type"] == POX_TYPES[want["type"]]
        assert got["Server"] == want["hostname"]
        assert got["Port"] == str(want["port"])
        assert got["SSL"] == ssl
        assert got["Encryption"] == encryption
        assert got["LoginName"] == want["username"]
        assert got["SPA"] == "off"
        assert got["AuthRequired"] == "on"
        assert got["DomainRequired"] == "off"
        if want["type"] == "smtp":
            same_login = want["username"] == incoming[0]["username"]
            assert got["UsePOPAuth"] == ("on" if same_login else "off")


def test_pox_path_in_any_letter_case(service: Service) -> None:
    service.secrets.add("alice@example.com")
    body = pox_body("alice@example.com")
    expected = pox_protocols(parse_xml(service.pox(body)))
    for path in (
        "/Autodiscover/Autodiscover.xml",
        "/AUTODISCOVER/AUTODISCOVER.XML",
        "/AutoDiscover/autodiscover.Xml",
    ):
        response = service.pox(body, path)
        assert response.status_code == 200, (path, response.text)
        assert pox_protocols(parse_xml(response)) == expected


def test_pox_accepts_and_ignores_basic_authorization(service: Service) -> None:
    address = "alice@example.com"
    credentials = f"{address}:correct horse battery staple"
    token = base64.b64encode(credentials.encode()).decode()
    service.secrets.update({address, token, credentials})
    plain = service.pox(pox_body(address))
    with_auth = service.pox(pox_body(address), headers={"Authorization": f"Basic {token}"})
    assert with_auth.status_code == 200
    assert "WWW-Authenticate" not in with_auth.headers
    assert pox_protocols(parse_xml(with_auth)) == pox_protocols(parse_xml(plain))
    assert pox_protocols(parse_xml(with_auth))


def test_pox_get_is_405_with_error_600(service: Service) -> None:
    """POST only: a client that tries a GET (Delta Chat) moves on to its next source."""
    for path in (POX_PATH, "/Autodiscover/Autodiscover.xml"):
        response = service.get(path)
        assert response.status_code == 405
        assert response.headers["Allow"] == "OPTIONS, POST"
        code, message, _ = pox_error(response)
        assert (code, message) == (600, "Invalid Request")


SECRET_FILE_MARKER = "root:"
BAD_POX_BODIES = {
    "malformed XML": b"<Autodiscover xmlns='" + NS_OUTLOOK_REQUEST.encode() + b"'><Request>",
    "not XML": b"alice@example.com",
    "empty body": b"",
    "comment only": b"<!-- nothing -->",
    "billion laughs": (
        b'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
        b' <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">\n'
        b' <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">\n]>\n'
        b'<Autodiscover xmlns="' + NS_OUTLOOK_REQUEST.encode() + b'"><Request>'
        b"<EMailAddress>&lol3;@example.com</EMailAddress></Request></Autodiscover>"
    ),
    "external entity": (
        b'<?xml version="1.0"?>\n<!DOCTYPE a [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
        b'<Autodiscover xmlns="' + NS_OUTLOOK_REQUEST.encode() + b'"><Request>'
        b"<EMailAddress>&xxe;</EMailAddress></Request></Autodiscover>"
    ),
    "lower-case doctype": (
        b'<!doctype Autodiscover SYSTEM "http://127.0.0.1:1/x.dtd">'
        + pox_body("alice@example.com").split(b"?>", 1)[1]
    ),
    "missing EMailAddress": pox_body(None),
    "empty EMailAddress": pox_body("  "),
    "wrong namespace": pox_body("alice@example.com", namespace="http://example.com/not-outlook"),
    "no namespace": b"<Autodiscover><Request><EMailAddress>alice@example.com</EMailAddress>"
    b"</Request></Autodiscover>",
    "wrong root": pox_body("alice@example.com").replace(b"Autodiscover", b"Autodetect"),
    "malformed address": pox_body("not-an-address"),
    "address without domain dot": pox_body("alice@localhost"),
    "bad encoding": b"<?xml version='1.0' encoding='bogus'?><a/>",
    "binary": bytes(range(256)),
}


@pytest.mark.parametrize("name", list(BAD_POX_BODIES))
def test_pox_bad_request_is_error_600(service: Service, name: str) -> None:
    response = service.pox(BAD_POX_BODIES[name])
    assert response.status_code == 200, response.text
    code, message, debug = pox_error(response)
    assert (code, message) == (600, "Invalid Request"), response.text
    assert SECRET_FILE_MARKER not in debug
    assert len(debug) < 1000


def test_pox_unsupported_response_schema_is_601(service: Service) -> None:
    response = service.pox(pox_body("alice@example.com", schema="http://example.com/no-schema"))
    assert response.status_code < 500
    code, _, _ = pox_error(response)
    assert code == 601


def test_pox_mobilesync_without_activesync_is_601(service: Service) -> None:
    assert "activesync" not in provider_for("example.org")
    body = pox_body(
        "bob@example.org", schema=NS_MOBILESYNC_RESPONSE, namespace=NS_MOBILESYNC_REQUEST
    )
    code, _, _ = pox_error(service.pox(body))
    assert code == 601


def test_pox_mobilesync_gives_the_activesync_url(service: Service) -> None:
    url = provider_for("example.com")["activesync"]["url"]
    body = pox_body(
        "alice@example.com", schema=NS_MOBILESYNC_RESPONSE, namespace=NS_MOBILESYNC_REQUEST
    )
    response = service.pox(body)
    assert response.status_code == 200
    root = parse_xml(response)
    ns = {"r": NS_RESPONSE, "m": NS_MOBILESYNC_RESPONSE}
    server = root.xpath("m:Response/m:Action/m:Settings/m:Server", namespaces=ns)[0]
    assert server.xpath("m:Type/text()", namespaces=ns) == ["MobileSync"]
    assert server.xpath("m:Url/text()", namespaces=ns) == [url]
    assert server.xpath("m:Name/text()", namespaces=ns) == [url]
    user = root.xpath("m:Response/m:User", namespaces=ns)[0]
    assert user.xpath("m:EMailAddress/text()", namespaces=ns) == ["alice@example.com"]


def test_pox_unknown_domain_is_500_with_http_404(service: Service) -> None:
    response = service.pox(pox_body("alice@unknown.example"))
    assert response.status_code == 404
    code, _, _ = pox_error(response)
    assert code == 500


def _oversized_body() -> bytes:
    """A good request followed by white space: over the limit, but its start parses."""
    return pox_body("alice@example.com") + b" " * (65 * 1024)


def test_pox_body_over_64_kib_is_413(service: Service) -> None:
    body = _oversized_body()
    assert len(body) > 64 * 1024
    response = service.pox(body)
    assert response.status_code == 413


def test_pox_chunked_body_over_64_kib_is_413(service: Service) -> None:
    """Without a Content-Length the limit still holds."""
    body = _oversized_body()
    chunks = iter([body[i : i + 8192] for i in range(0, len(body), 8192)])
    response = service.pox(chunks)  # type: ignore[arg-type]
    assert response.status_code == 413


def test_pox_chunked_small_body_is_answered(service: Service) -> None:
    body = pox_body("alice@example.com")
    response = service.pox(iter([body[:50], body[50:]]))  # type: ignore[arg-type]
    assert response.status_code == 200
    assert pox_protocols(parse_xml(response))


# ---------------------------------------------------------------------------
# Autodiscover v2 (JSON)


def json_forms(address: str, protocol: str) -> list[tuple[str, dict[str, str] | None]]:
    return [
        (JSON_PATH, {"Email": address, "Protocol": protocol}),
        (f"{JSON_PATH}/v1.0/{address}", {"Protocol": protocol}),
    ]


@pytest.mark.parametrize("form", [0, 1])
@pytest.mark.parametrize("protocol", ["AutodiscoverV1", "autodiscoverv1", "AUTODISCOVERV1"])
def test_json_autodiscover_v1_points_at_the_xml_endpoint(
    service: Service, form: int, protocol: str
) -> None:
    address = "alice@example.com"
    service.secrets.add(address)
    path, params = json_forms(address, protocol)[form]
    response = service.get(path, params=params, headers={"Host": "autodiscover.example.com"})
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    assert json.loads(response.content) == {
        "Protocol": "AutodiscoverV1",
        "Url": "https://autodiscover.example.com/Autodiscover/Autodiscover.xml",
    }


def test_json_url_leads_to_a_working_pox_endpoint(service: Service) -> None:
    address = "carol@example.org"
    service.secrets.add(address)
    response = service.get(
        f"{JSON_PATH}/v1.0/{address}",
        params={"Protocol": "AutodiscoverV1"},
        headers={"Host": f"127.0.0.1:{service.port}"},
    )
    url = json.loads(response.content)["Url"]
    # 127.0.0.1 is no served name: the Url names the provider's own autodiscover. host.
    prefix = "https://autodiscover.example.org/"
    assert url.startswith(prefix)
    answer = service.pox(pox_body(address), "/" + url.removeprefix(prefix))
    assert answer.status_code == 200
    assert pox_protocols(parse_xml(answer))


def test_json_query_parameter_names_in_any_case(service: Service) -> None:
    service.secrets.add("alice@example.com")
    response = service.get(
        JSON_PATH, params={"email": "alice@example.com", "protocol": "autodiscoverv1"}
    )
    assert response.status_code == 200, response.text
    assert json.loads(response.content)["Protocol"] == "AutodiscoverV1"


@pytest.mark.parametrize("form", [0, 1])
@pytest.mark.parametrize("protocol", ["Imap", "ews", "", "AutodiscoverV2", "ActiveSync"])
def test_json_unknown_protocol_is_400_invalid_protocol(
    service: Service, form: int, protocol: str
) -> None:
    # example.org has no activesync, so ActiveSync is not offered either.
    address = "bob@example.org"
    service.secrets.add(address)
    path, params = json_forms(address, protocol)[form]
    response = service.get(path, params=params)
    assert response.status_code == 400, response.text
    answer = json.loads(response.content)
    assert answer["ErrorCode"] == "InvalidProtocol"
    assert answer["ErrorMessage"]


def test_json_without_protocol_is_400_invalid_protocol(service: Service) -> None:
    service.secrets.add("alice@example.com")
    response = service.get(JSON_PATH, params={"Email": "alice@example.com"})
    assert response.status_code == 400
    assert json.loads(response.content)["ErrorCode"] == "InvalidProtocol"


@pytest.mark.parametrize("form", [0, 1])
def test_json_unknown_domain_is_404(service: Service, form: int) -> None:
    path, params = json_forms("alice@unknown.example", "AutodiscoverV1")[form]
    response = service.get(path, params=params)
    assert response.status_code == 404
    answer = json.loads(response.content)
    assert answer["ErrorCode"] and answer["ErrorMessage"]


@pytest.mark.parametrize("address", ["no-at-sign", "alice@localhost", "@example.com"])
def test_json_malformed_address_is_400(service: Service, address: str) -> None:
    path, params = json_forms(address, "AutodiscoverV1")[0]
    response = service.get(path, params=params)
    assert response.status_code == 400
    answer = json.loads(response.content)
    assert answer["ErrorCode"] != "InvalidProtocol" and answer["ErrorMessage"]


def test_json_without_email_is_400(service: Service) -> None:
    response = service.get(JSON_PATH, params={"Protocol": "AutodiscoverV1"})
    assert response.status_code == 400
    assert json.loads(response.content)["ErrorMessage"]


# ---------------------------------------------------------------------------
# Nothing makes it answer 5xx

ODD_QUERIES = [
    "emailaddress=",
    "emailaddress=%ED%A0%80@example.com",
    "emailaddress=alice@%ED%A0%80.example",
    "emailaddress=%FF%FE@example.com",
    "emailaddress=alice@%FF.com",
    "emailaddress=alice%40example.com%00",
    "emailaddress=" + "a" * 5000 + "@example.com",
    "emailaddress=alice@" + "a." * 2000 + "com",
    "emailaddress=%22a%20b%22@example.com",
    "emailaddress=%22%3C%3E%26%22@example.com",
    "emailaddress=alice@example.com&emailaddress=bob@example.net",
    "emailaddress=alice@%E2%80%AEexample.com",
    "emailaddress=alice@*.customers.example.org",
    "emailaddress=alice@*",
    "emailaddress=alice@[127.0.0.1]",
    "EmailAddress=alice@example.com",
    "emailaddress=%",
]
ODD_HOSTS = [
    "",
    "[::1]",
    "[::1]:80",
    "a:b:c",
    "..",
    ".",
    "xn--",
    "autoconfig.",
    "autoconfig",
    "autodiscover.com",
    "*.customers.example.org",
    "autoconfig.a.customers.example.org",
    "x" * 1000,
    "example.com:notaport",
    "autoconfig.m\xfcller.example",
]
ODD_PATHS = [
    "/",
    "/?emailaddress=alice@example.com",
    "/mobileconfig?emailaddress=alice@example.com",
    "/mobileconfig?emailaddress=nonsense",
    "/metrics",
    "/healthz?x=1",
    "/nonexistent",
    "/autodiscover/autodiscover.xml/extra",
    "/autodiscover/autodiscover.json/v1.0/",
    "/autodiscover/autodiscover.json/v1.0/%00?Protocol=AutodiscoverV1",
    "/autodiscover/autodiscover.json/v1.0/a/b@example.com?Protocol=AutodiscoverV1",
    "/autodiscover/autodiscover.json/v2.0/alice@example.com?Protocol=AutodiscoverV1",
    "/%2e%2e/%2e%2e/etc/passwd",
    "/mail/config-v1.1.xml/",
]


def test_odd_queries_never_give_5xx(service: Service) -> None:
    for path in AUTOCONFIG_PATHS:
        for query in ODD_QUERIES:
            service.get(f"{path}?{query}")
    for query in ODD_QUERIES:
        service.get(f"{JSON_PATH}?{query.replace('emailaddress', 'Email')}&Protocol=x")
        service.get(f"{JSON_PATH}?{query.replace('emailaddress', 'Email')}&Protocol=activesync")


def test_odd_hosts_never_give_5xx(service: Service) -> None:
    for host in ODD_HOSTS:
        for path in (
            *AUTOCONFIG_PATHS,
            JSON_PATH + "?Email=alice@example.com&Protocol=autodiscoverv1",
            "/healthz",
        ):
            service.get(path, headers={"Host": host})


def test_odd_paths_and_methods_never_give_5xx(service: Service) -> None:
    for path in ODD_PATHS:
        service.get(path)
    paths = [*AUTOCONFIG_PATHS, POX_PATH, JSON_PATH, "/healthz", "/"]
    for method in ("HEAD", "PUT", "DELETE", "PATCH", "OPTIONS", "POST"):
        for path in paths:
            service.request(method, path, data=b"<x/>")


def test_odd_pox_requests_never_give_5xx(service: Service) -> None:
    body = pox_body("alice@example.com")
    variants: list[tuple[bytes, dict[str, str]]] = [
        (body, {"Content-Type": "application/x-www-form-urlencoded"}),
        (body, {"Content-Type": "multipart/form-data; boundary=x"}),
        (body, {"Content-Type": "application/json"}),
        (body.decode().encode("utf-16"), {}),
        (b"\xef\xbb\xbf" + body, {}),
        (b"<a>" * 3000 + b"</a>" * 3000, {}),
        (pox_body("alice@example.com", schema=""), {}),
        (pox_body("alice@example.com", schema=None), {}),
        (pox_body("x" * 70 + "@example.com"), {}),
        (pox_body('"quoted local"@example.com'), {}),
        (pox_body("alice@example.com\u202e"), {}),
        (body.replace(b"alice@example.com", b"alice@exa&#x0;mple.com"), {}),
        (body.replace(b"alice@example.com", b"alice@&#xD800;.com"), {}),
        (body.replace(b"<Request>", b"<?pi data?><Request>"), {}),
        (body.replace(b"<Request>", b"<![CDATA[x]]><Request>"), {}),
        (body + body, {}),
    ]
    for data, headers in variants:
        service.pox(data, headers=headers)
        service.pox(data, "/AutoDiscover/AutoDiscover.xml", headers=headers)


# ---------------------------------------------------------------------------
# The access log


def test_access_log_shows_no_address_and_no_credentials(service: Service) -> None:
    address = "log.secret.person@example.com"
    credentials = f"{address}:hunter2-password"
    token = base64.b64encode(credentials.encode()).decode()
    service.secrets.update({address, credentials, token})
    auth = {"Authorization": f"Basic {token}"}
    service.autoconfig(address, headers=auth)
    service.autoconfig(address, path=AUTOCONFIG_PATHS[1], headers=auth)
    service.pox(pox_body(address), headers=auth)
    service.get(JSON_PATH, params={"Email": address, "Protocol": "AutodiscoverV1"}, headers=auth)
    service.get(f"{JSON_PATH}/v1.0/{address}", params={"Protocol": "AutodiscoverV1"}, headers=auth)

    # The access log is written after the answer: wait for a last request to show.
    marker = f"/end-of-log-{uuid.uuid4().hex}"
    service.get(marker)
    deadline = time.monotonic() + 10
    while marker not in service.log_text():
        assert time.monotonic() < deadline, "the access log never showed the last request"
        time.sleep(0.1)

    log = service.log_text()
    lines = log.splitlines()
    assert any(JSON_PATH in line for line in lines), "the requests are not in the access log"
    leaks = {
        secret: [line for line in lines if secret.lower() in line.lower()]
        for secret in sorted(service.secrets)
        if len(secret) > 3
    }
    leaks = {secret: found[:3] for secret, found in leaks.items() if found}
    assert leaks == {}, "the log shows addresses or credentials:\n" + json.dumps(leaks, indent=1)
    # The percent-encoded form of an address is the same leak.
    assert "%40example.com" not in log.lower()


# ---------------------------------------------------------------------------
# Hosts and addresses that cannot be decoded: 400 and a reason; the log shows
# the access line and nothing else.

ACCESS_LINE = re.compile(r'\S+ "[A-Z]+ \S* HTTP/1\.[01]" \d{3} \d+ \d+ms')
UNDECODABLE_HOSTS = ["xn--zz.test", "a..b", "x" * 64 + ".example", "exa_mple.com", "example.com:0"]
HOST_PATHS = [
    "/",
    "/?emailaddress=alice@example.com",
    "/healthz",
    "/metrics",
    "/nonexistent",
    AUTOCONFIG_PATHS[0] + "?emailaddress=alice@example.com",
    JSON_PATH + "?Email=alice@example.com&Protocol=AutodiscoverV1",
    "/mobileconfig?emailaddress=alice@example.com",
]


def log_after(service: Service, start: int) -> list[str]:
    """The log lines written from ``start`` on, once a marker request shows at its end."""
    marker = f"/end-of-log-{uuid.uuid4().hex}"
    service.get(marker)
    deadline = time.monotonic() + 10
    while marker not in service.log_text()[start:]:
        assert time.monotonic() < deadline, "the access log never showed the last request"
        time.sleep(0.1)
    return service.log_text()[start:].splitlines()


def test_undecodable_hosts_and_addresses_are_400_with_only_the_access_line(
    service: Service,
) -> None:
    start = len(service.log_text())
    sent = 0
    for host in UNDECODABLE_HOSTS:
        for path in HOST_PATHS:
            answer = service.get(path, headers={"Host": host})
            assert answer.status_code == 400, (host, path)
            assert "internal error" not in answer.text
            if answer.headers["Content-Type"].startswith("text/html"):  # the page, for people
                assert "These settings cannot be shown" in answer.text, (host, path)
            else:
                assert "the Host header" in answer.text, (host, path)
            sent += 1
        pox = service.pox(pox_body("alice@example.com"), headers={"Host": host})
        assert pox.status_code == 200 and b"<ErrorCode>600</ErrorCode>" in pox.content
        sent += 1
    for path in [
        AUTOCONFIG_PATHS[0] + "?emailaddress=%ff%fe@example.com",
        "/mobileconfig?emailaddress=%ff%fe@example.com",
        JSON_PATH + "?Email=%ff%fe@example.com&Protocol=AutodiscoverV1",
        JSON_PATH + "/v1.0/%ff%fe@example.com?Protocol=AutodiscoverV1",
        "/?emailaddress=%ff%fe@example.com",
    ]:
        answer = service.get(path)
        people = "This is not an email address" if path.startswith("/?") else "is not valid UTF-8"
        assert answer.status_code == 400 and people in answer.text, path
        assert "\ufffd" not in answer.text
        sent += 1
    lines = log_after(service, start)
    assert [line for line in lines if not ACCESS_LINE.fullmatch(line)] == []
    assert len(lines) == sent + 1  # one access line each, and the marker's


# ---------------------------------------------------------------------------
# Last: every answer of the module


def test_no_answer_was_5xx(service: Service) -> None:
    service.get("/healthz")
    server_errors = [s for s in service.statuses if s[2] >= 500]
    assert server_errors == []
    assert service.process.poll() is None, "the service died"
    assert "Traceback" not in service.log_text()
