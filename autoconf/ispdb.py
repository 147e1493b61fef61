"""Importing Thunderbird ISPDB files (clientConfig 1.1 XML) as domain YAML (SPEC §4).

:func:`convert` is pure: one parsed clientConfig document in, the text of a domain
file and the list of changes the import made out. :func:`import_main` is the
command around it: XML files in, YAML files out, warnings on stderr, an exit code.

Every value is checked with the same readers ``check`` uses (:mod:`autoconf.schema`),
so that an imported file is valid by construction; what cannot be made valid is
left out with a warning. docs/domain-files.md ("Importing Thunderbird ISPDB
files") lists every change an import makes; keep the two in step.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
import yaml
from lxml import etree

from autoconf.address import EMAILADDRESS, PLACEHOLDERS, InvalidDomain, normalize_domain
from autoconf.model import OUTGOING_ONLY_AUTH, Auth, Security
from autoconf.registry import load_file
from autoconf.schema import HOST_PLACEHOLDERS, Checker
from autoconf.yamlio import MarkedMap

# The command's exit codes, as autoconf.cli names them (importing cli here would be a cycle).
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

Data = dict[str, Any]
T = TypeVar("T")

# ISPDB files are a few kilobytes; anything far larger is not one.
MAX_FILE_BYTES = 1024 * 1024
INCOMING_TYPES = ("imap", "pop3")
OUTGOING_TYPES = ("smtp",)
SOCKET_TYPES = {"SSL": Security.SSL, "STARTTLS": Security.STARTTLS, "plain": Security.NONE}
# Thunderbird's own names, plus the names of its first file format.
AUTH_NAMES: dict[str, Auth] = {a.value.lower(): a for a in Auth} | {
    "plain": Auth.PASSWORD_CLEARTEXT,
    "secure": Auth.PASSWORD_ENCRYPTED,
}
POP3_FLAGS = {
    "leaveMessagesOnServer": "leave_messages_on_server",
    "downloadOnBiff": "download_on_biff",
}
POP3_DAYS = ("daysToLeaveMessagesOnServer", "days_to_leave_messages_on_server", 1, 36500)
OAUTH2_FIELDS = {
    "issuer": "issuer",
    "scope": "scope",
    "authURL": "auth_url",
    "tokenURL": "token_url",
}
# What looks like a placeholder, as the domain-file check sees it; URL escapes
# such as %2F or %C3%BC do not match.
PLACEHOLDER_LIKE = re.compile(r"%[A-Za-z][A-Za-z_]{3,}%?")
_NAMES = [p.strip("%") for p in PLACEHOLDERS]
_KEY = "value"  # the key a single value is checked under


class ImportFailed(Exception):
    """The document cannot become a valid domain file; the message says why."""


class Notes:
    """The changes one import makes, as messages for the admin."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def add(self, where: str, message: str) -> None:
        self.messages.append(f"{where}: {message}" if where else message)

    def left_out(self, where: str, element: etree._Element, why: str) -> None:
        self.add(where, f"<{element.tag}> left out: {why}")


# ---------------------------------------------------------------------------
# Parsing


def parse(data: bytes) -> etree._Element:
    """The document's root, read with a hardened parser: no DTD, no entities, no network.

    An entity reference stays an unexpanded node (see :func:`_note_entities`), so
    neither a billion laughs nor an external file can get into a domain file.
    """
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,  # the text of <port>99<!-- x -->3</port> is then "993"
        remove_pis=True,
    )
    return etree.fromstring(data, parser)


def _elements(parent: etree._Element) -> Iterator[etree._Element]:
    """The child elements (entity references are nodes too, but not elements)."""
    return (child for child in parent if isinstance(child.tag, str))


def _text(element: etree._Element) -> str:
    return (element.text or "").strip()


def _child_text(parent: etree._Element, tag: str, where: str, notes: Notes) -> str | None:
    """The text of the first child ``tag`` (None if absent or empty); more are left out."""
    found = parent.findall(tag)
    for extra in found[1:]:
        notes.left_out(where, extra, f"more than one <{tag}>; the first is used")
    text = _text(found[0]) if found else ""
    return text or None


def _note_entities(root: etree._Element, notes: Notes) -> None:
    for entity in root.iter(etree.Entity):
        notes.add("", f"entity reference {entity.text} left out: entities are not expanded")


# ---------------------------------------------------------------------------
# Values, checked as `check` will check them


def _marked(values: dict[str, Any]) -> MarkedMap:
    """A mapping the schema readers accept, for checking values outside a file."""
    marked = MarkedMap(values)
    marked.line = 1
    marked.key_lines = dict.fromkeys(values, 1)
    return marked


def _checked(read: Callable[[Checker, MarkedMap], T | None], value: object) -> tuple[T | None, str]:
    """``read`` applied to ``value``: the result, or None and the first error it reports."""
    checker = Checker("(import)")
    result = read(checker, _marked({_KEY: value}))
    errors = [p.message for p in checker.problems if p.is_error]
    return (None, errors[0]) if errors else (result, "")


def _read_host(c: Checker, m: MarkedMap) -> str | None:
    return c.hostname(m, _KEY, _KEY, placeholders=HOST_PLACEHOLDERS)


def _read_name(c: Checker, m: MarkedMap) -> str | None:
    return c.hostname(m, _KEY, _KEY)


def _read_url(c: Checker, m: MarkedMap) -> str | None:
    return c.url(m, _KEY, _KEY, required=True)


def _read_template(c: Checker, m: MarkedMap) -> str | None:
    return c.template(m, _KEY, _KEY, default=EMAILADDRESS)


def _read_texts(c: Checker, m: MarkedMap) -> tuple[tuple[str, str], ...] | None:
    return c.language_texts(m, _KEY, _KEY)


def fix_placeholders(text: str, where: str, notes: Notes) -> str:
    """``text`` with near misses such as ``%EMAILADDRESS`` corrected, each with a note.

    What is too far from every placeholder stays, for the caller's check to refuse.
    """

    def correct(match: re.Match[str]) -> str:
        found = match.group(0)
        if found in PLACEHOLDERS:
            return found
        close = difflib.get_close_matches(found.strip("%").upper(), _NAMES, n=1, cutoff=0.8)
        if not close:
            return found
        fixed = f"%{close[0]}%"
        notes.add(where, f"typo {found!r} corrected to {fixed!r}")
        return fixed

    return PLACEHOLDER_LIKE.sub(correct, text)


def _host(raw: str, where: str, notes: Notes) -> str | None:
    text = fix_placeholders(raw, where, notes)
    host, problem = _checked(_read_host, text)
    if host is None:
        notes.add(where, f"hostname: {problem}; server left out")
    elif host != text:
        notes.add(where, f"hostname {text!r} written as {host!r}")
    return host


def _url(raw: str, where: str, what: str, notes: Notes) -> str | None:
    """A URL ``check`` accepts (http only with its warning), or None with a note."""
    text = fix_placeholders(raw, where, notes)
    url, problem = _checked(_read_url, text)
    if url is None:
        notes.add(where, f"{what} left out: {problem or 'no URL'}")
    return url


def _template(raw: str, where: str, notes: Notes) -> tuple[str | None, str]:
    """A user name: placeholders corrected and checked."""
    text = fix_placeholders(raw, where, notes)
    return _checked(_read_template, text)


# ---------------------------------------------------------------------------
# Servers


def _server_children(kind: str) -> tuple[str, ...]:
    common = ("hostname", "port", "socketType", "username", "authentication")
    return (*common, "pop3") if kind == "pop3" else common


def _leave_out_unknown(
    element: etree._Element, where: str, known: Sequence[str], notes: Notes
) -> None:
    for child in _elements(element):
        if child.tag == "password":
            notes.left_out(where, child, "a domain file never carries a password")
        elif child.tag not in known:
            notes.left_out(where, child, "our format has no key for it")


def _servers(
    provider: etree._Element, tag: str, notes: Notes, fallback_username: str | None
) -> list[Data]:
    servers = []
    for index, element in enumerate(provider.findall(tag), start=1):
        server = _server(element, f"{tag}[{index}]", notes, fallback_username)
        if server is not None:
            servers.append(server)
    return servers


def _server(
    element: etree._Element, where: str, notes: Notes, fallback_username: str | None
) -> Data | None:
    outgoing = element.tag == "outgoingServer"
    served = OUTGOING_TYPES if outgoing else INCOMING_TYPES
    raw_type = (element.get("type") or "").strip()
    kind = raw_type.lower()
    if kind not in served:
        only = " and ".join(served)
        notes.add(where, f"server type {raw_type!r} is not served (only {only}); left out")
        return None
    _leave_out_unknown(element, where, _server_children(kind), notes)
    host = _server_host(element, where, notes)
    port = _port(element, where, notes)
    security = _security(element, where, notes)
    username = _username(element, where, notes, fallback_username)
    if host is None or port is None or security is None or username is None:
        return None
    server: Data = {"type": kind, "host": host, "port": port, "security": security}
    methods = _auth(element, where, outgoing, notes)
    server["auth"] = methods[0] if len(methods) == 1 else methods
    server["username"] = username
    pop3 = _pop3(element, where, notes) if kind == "pop3" else None
    if pop3:
        server["pop3"] = pop3
    return server


def _server_host(element: etree._Element, where: str, notes: Notes) -> str | None:
    raw = _child_text(element, "hostname", where, notes)
    if raw is None:
        notes.add(where, "no <hostname>; server left out")
        return None
    return _host(raw, where, notes)


def _port(element: etree._Element, where: str, notes: Notes) -> int | None:
    raw = _child_text(element, "port", where, notes)
    if raw is None or not re.fullmatch(r"[0-9]{1,5}", raw) or not 1 <= int(raw) <= 65535:
        notes.add(where, f"port {raw!r} is not a port number (1 to 65535); server left out")
        return None
    return int(raw)


def _security(element: etree._Element, where: str, notes: Notes) -> str | None:
    raw = _child_text(element, "socketType", where, notes) or ""
    by_lower = {name.lower(): (name, security) for name, security in SOCKET_TYPES.items()}
    if raw.lower() not in by_lower:
        known = ", ".join(SOCKET_TYPES)
        notes.add(where, f"socketType {raw!r} is not one of {known}; server left out")
        return None
    name, security = by_lower[raw.lower()]
    if name != raw:
        notes.add(where, f"socketType {raw!r} read as {name!r}")
    return security.value


def _username(
    element: etree._Element, where: str, notes: Notes, fallback: str | None
) -> str | None:
    raw = _child_text(element, "username", where, notes)
    if raw is None:
        # Thunderbird's account setup logs in to SMTP with the incoming login
        # unless told otherwise; our own default is the whole address.
        value = fallback or EMAILADDRESS
        why = "the first incoming server's" if fallback else "our default"
        notes.add(where, f"no <username>: {value!r} ({why}) is used")
        return value
    username, problem = _template(raw, where, notes)
    if username is None:
        notes.add(where, f"username: {problem}; server left out")
    return username


def _auth(element: etree._Element, where: str, outgoing: bool, notes: Notes) -> list[str]:
    """Our names for the server's methods, in its order; never empty."""
    methods: list[str] = []
    given = [_text(e) for e in element.findall("authentication")]
    for raw in given:
        method = AUTH_NAMES.get(raw.lower())
        if method is None:
            notes.add(where, f"authentication {raw!r} is not one we know; left out")
        elif method in OUTGOING_ONLY_AUTH and not outgoing:
            notes.add(where, f"authentication {raw!r} is only for outgoing servers; left out")
        elif method.value in methods:
            notes.add(where, f"authentication {raw!r} is listed twice; left out")
        else:
            if method.value != raw:
                notes.add(where, f"authentication {raw!r} written as {method.value!r}")
            methods.append(method.value)
    if not methods:
        # The server is still worth having: password-cleartext (inside TLS) is
        # what nearly every server takes, and it is our format's default.
        default = Auth.PASSWORD_CLEARTEXT.value
        what = "none of its <authentication> values is usable" if given else "no <authentication>"
        notes.add(where, f"{what}: {default} is used")
        methods.append(default)
    return methods


def _pop3(element: etree._Element, where: str, notes: Notes) -> Data:
    options: Data = {}
    for block in element.findall("pop3"):
        for child in _elements(block):
            _pop3_option(child, f"{where}.pop3", options, notes)
    return options


def _pop3_option(child: etree._Element, where: str, options: Data, notes: Notes) -> None:
    raw = _text(child)
    days_tag, days_key, low, high = POP3_DAYS
    if child.tag in POP3_FLAGS and raw.lower() in ("true", "false"):
        options.setdefault(POP3_FLAGS[child.tag], raw.lower() == "true")
    elif child.tag == days_tag and raw.isdigit() and low <= int(raw) <= high:
        options.setdefault(days_key, int(raw))
    elif child.tag in POP3_FLAGS or child.tag == days_tag:
        notes.left_out(where, child, f"{raw!r} is not a valid value")
    else:
        notes.left_out(where, child, "our format has no key for it")


# ---------------------------------------------------------------------------
# The provider


def _email_provider(root: etree._Element) -> etree._Element:
    if root.tag != "clientConfig":
        raise ImportFailed(f"the root element is <{root.tag}>, not <clientConfig>")
    provider = root.find("emailProvider")
    if provider is None:
        raise ImportFailed("no <emailProvider>")
    return provider


def _provider_meta(provider: etree._Element, notes: Notes) -> Data:
    where = "emailProvider"
    meta: Data = {}
    raw_id = (provider.get("id") or "").strip()
    if raw_id:
        provider_id, problem = _checked(_read_name, raw_id)
        if provider_id is None:
            notes.add(where, f"id left out ({problem}): the first domain is the id")
        else:
            if provider_id != raw_id:
                notes.add(where, f"id {raw_id!r} written as {provider_id!r}")
            meta["id"] = provider_id
    name = _child_text(provider, "displayName", where, notes)
    if name:
        meta["name"] = name
    short = _child_text(provider, "displayShortName", where, notes)
    misspelt = _child_text(provider, "displayNameShort", where, notes)
    if misspelt and not short:
        notes.add(where, "typo <displayNameShort> read as <displayShortName>")
        short = misspelt
    elif misspelt:
        notes.add(where, "<displayNameShort> left out: <displayShortName> is given too")
    if short:
        meta["short_name"] = short
    return meta


def _domains(provider: etree._Element, notes: Notes) -> list[str]:
    domains: list[str] = []
    for index, element in enumerate(provider.findall("domain"), start=1):
        where, raw = f"domain[{index}]", _text(element)
        try:
            domain = normalize_domain(raw)
        except InvalidDomain as exc:
            notes.add(where, f"{raw!r} left out: {exc}")
            continue
        if domain in domains:
            notes.add(where, f"{domain} is listed twice; left out")
            continue
        if domain != raw:
            notes.add(where, f"{raw!r} written as {domain!r}")
        domains.append(domain)
    return domains


def _documentation(element: etree._Element, where: str, notes: Notes) -> Data | None:
    url = _url(element.get("url") or "", where, f"<{element.tag}>", notes)
    if url is None:
        return None
    texts: dict[str, str] = {}
    for child in _elements(element):
        if child.tag == "descr":
            _descr(child, where, texts, notes)
        else:
            notes.left_out(where, child, "our format has no key for it")
    if not texts:
        # A domain file's documentation needs a text (the page shows it as the link).
        notes.add(where, "no <descr>: the URL is its English text")
        texts["en"] = url
    return {"url": url, "text": texts}


def _descr(child: etree._Element, where: str, texts: dict[str, str], notes: Notes) -> None:
    """Add one <descr> to ``texts`` (language -> text), or leave it out with a note."""
    text, raw_lang = _text(child), child.get("lang")
    primary, dash, rest = (raw_lang or "en").strip().partition("-")
    lang = primary.lower() + dash + rest  # "EN-us" is "en-us": the schema wants it so
    _, problem = _checked(_read_texts, _marked({lang: text}))
    if not text or lang in texts or problem:
        why = problem or ("it is empty" if not text else f"a second text in {lang!r}")
        notes.left_out(where, child, why)
        return
    if raw_lang is None:
        notes.add(where, "<descr> without lang read as English (en)")
    elif lang != raw_lang:
        notes.add(where, f"lang {raw_lang!r} written as {lang!r}")
    texts[lang] = text


def _documentations(provider: etree._Element, notes: Notes) -> list[Data]:
    docs = []
    counts: Counter[str] = Counter()
    for element in _elements(provider):
        if element.tag not in ("documentation", "instruction"):
            continue
        counts[element.tag] += 1
        where = f"{element.tag}[{counts[element.tag]}]"
        if element.tag == "instruction":
            # <instruction> belongs in <enable>; one with a URL here is a help page.
            if element.get("url") is None:
                notes.left_out(where, element, "misplaced, and our format has no key for it")
                continue
            notes.add(where, "misplaced <instruction url=...> read as <documentation>")
        doc = _documentation(element, where, notes)
        if doc is not None:
            docs.append(doc)
    return docs


def _block(
    root: etree._Element, provider: etree._Element, tag: str, notes: Notes
) -> etree._Element | None:
    """A child of <clientConfig>; one found inside <emailProvider> is taken too."""
    found = [(e, "") for e in root.findall(tag)] + [(e, "misplaced") for e in provider.findall(tag)]
    for extra, _ in found[1:]:
        notes.left_out(tag, extra, f"more than one <{tag}>; the first is used")
    if not found:
        return None
    element, misplaced = found[0]
    if misplaced:
        notes.add(tag, "misplaced inside <emailProvider>; read as if in <clientConfig>")
    return element


def _webmail(block: etree._Element, notes: Notes) -> Data | None:
    url = None
    for child in _elements(block):
        if child.tag == "loginPage" and url is None:
            url = _url(child.get("url") or "", "webMail", "<loginPage url>", notes)
        else:
            notes.left_out("webMail", child, "our format has no key for it")
    return {"url": url} if url else None


def _oauth2(block: etree._Element, notes: Notes) -> Data | None:
    """All four values, or nothing: the format needs them all."""
    where = "oAuth2"
    _leave_out_unknown(block, where, tuple(OAUTH2_FIELDS), notes)
    values: Data = {}
    for tag, key in OAUTH2_FIELDS.items():
        raw = _child_text(block, tag, where, notes)
        if raw is None:
            value, problem = None, "missing"
        elif tag == "issuer":
            value, problem = _checked(_read_name, raw)
        elif tag == "scope":
            value, problem = raw, ""
        else:
            value, problem = _checked(_read_url, fix_placeholders(raw, where, notes))
        if value is None:
            notes.add(where, f"<{tag}>: {problem}; the whole <oAuth2> left out")
            return None
        values[key] = value
    return values


def _dav(block: etree._Element, notes: Notes) -> Data | None:
    """<calendar>/<addressBook>: a CalDAV/CardDAV URL and user name (HTTP basic auth)."""
    where = block.tag
    for child in _elements(block):
        if child.tag == "authentication" and _text(child).lower() != "basic":
            notes.left_out(where, child, f"{_text(child)!r}: we serve HTTP basic only")
        elif child.tag not in ("serverURL", "username", "authentication"):
            notes.left_out(where, child, "our format has no key for it")
    raw_url = _child_text(block, "serverURL", where, notes)
    url = _url(raw_url or "", where, "<serverURL>", notes)
    if url is None:
        return None
    dav: Data = {"url": url}
    raw_user = _child_text(block, "username", where, notes)
    if raw_user is not None:
        username, problem = _template(raw_user, where, notes)
        if username is None:
            notes.add(where, f"username: {problem}; our default is used")
        else:
            dav["username"] = username
    return dav


_PROVIDER_CHILDREN = (
    "domain",
    "displayName",
    "displayShortName",
    "displayNameShort",
    "incomingServer",
    "outgoingServer",
    "documentation",
    "instruction",
    "webMail",
    "oAuth2",
)
_ROOT_CHILDREN = ("emailProvider", "webMail", "oAuth2", "calendar", "addressBook")


def domain_data(root: etree._Element) -> tuple[Data, list[str]]:
    """The domain file's content for one clientConfig document, and the changes made.

    Raises ImportFailed when no valid file can come of it (no usable domain,
    no incoming or no outgoing server left).
    """
    notes = Notes()
    provider = _email_provider(root)
    _note_entities(root, notes)
    for extra in root.findall("emailProvider")[1:]:
        notes.left_out("", extra, "only the first <emailProvider> is imported")
    _leave_out_unknown(root, "clientConfig", _ROOT_CHILDREN, notes)
    _leave_out_unknown(provider, "emailProvider", _PROVIDER_CHILDREN, notes)

    data: Data = {}
    meta = _provider_meta(provider, notes)
    if meta:
        data["provider"] = meta
    data["domains"] = _domains(provider, notes)
    if not data["domains"]:
        raise ImportFailed("no usable <domain>")
    data["incoming"] = _servers(provider, "incomingServer", notes, None)
    if not data["incoming"]:
        raise ImportFailed("no IMAP or POP3 server left to import")
    first_login = data["incoming"][0]["username"]
    data["outgoing"] = _servers(provider, "outgoingServer", notes, first_login)
    if not data["outgoing"]:
        raise ImportFailed("no SMTP server left to import")

    for tag, key in (("calendar", "calendar"), ("addressBook", "addressbook")):
        block = root.find(tag)
        dav = _dav(block, notes) if block is not None else None
        if dav:
            data[key] = dav
    webmail = _block(root, provider, "webMail", notes)
    if webmail is not None and (found := _webmail(webmail, notes)):
        data["webmail"] = found
    docs = _documentations(provider, notes)
    if docs:
        data["documentation"] = docs
    oauth2 = _block(root, provider, "oAuth2", notes)
    if oauth2 is not None and (found := _oauth2(oauth2, notes)):
        data["oauth2"] = found
    return data, notes.messages


# ---------------------------------------------------------------------------
# YAML


def _one_line(text: str) -> str:
    """Text safe inside a YAML comment: no line breaks of any kind YAML knows."""
    return re.sub(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]", " ", text)


def to_yaml(data: Data, source_name: str, warnings: Sequence[str]) -> str:
    source = _one_line(source_name)
    header = [f"# Source: {source} (Thunderbird ISPDB), converted by `mail-autoconf import`."]
    if warnings:
        header.append(
            "# What the import changed (docs/domain-files.md, Importing Thunderbird ISPDB):"
        )
        header += [f"#   - {_one_line(w)}" for w in warnings]
    # A wide line: a long scope or URL stays on one line, as an admin would write it.
    body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=4096)
    return "\n".join(header) + "\n" + body


def convert(root: etree._Element, source_name: str) -> tuple[str, list[str]]:
    """One clientConfig document as the text of a domain file, and the warnings."""
    data, warnings = domain_data(root)
    return to_yaml(data, source_name, warnings), warnings


# ---------------------------------------------------------------------------
# The command


@dataclass(frozen=True, slots=True)
class Converted:
    source: Path
    provider_id: str
    text: str
    warnings: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Failed:
    source: Path
    reason: str


class UsageError(Exception):
    pass


def _source_files(source: Path) -> list[Path]:
    if not source.is_dir():
        return [source]
    files = sorted(
        p
        for p in source.iterdir()
        if p.suffix.lower() == ".xml" and p.is_file() and not p.name.startswith(".")
    )
    if not files:
        raise UsageError("no .xml files in this folder")
    return files


def _prepare_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{out}: cannot create the folder ({exc.strerror or exc})") from None


def convert_file(path: Path) -> Converted | Failed:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return Failed(path, f"larger than {MAX_FILE_BYTES // 1024} KiB: not an ISPDB file")
        data = path.read_bytes()
    except OSError as exc:
        return Failed(path, f"cannot read: {exc.strerror or exc}")
    try:
        root = parse(data)
    except etree.XMLSyntaxError as exc:
        return Failed(path, f"not well-formed XML: {exc}")
    try:
        content, warnings = domain_data(root)
    except ImportFailed as exc:
        return Failed(path, f"cannot import: {exc}")
    provider_id = content.get("provider", {}).get("id") or content["domains"][0]
    text = to_yaml(content, path.name, warnings)
    return Converted(path, provider_id, text, tuple(warnings))


def _safe_stem(name: str) -> str:
    """A file name stem that is no path and no hidden file."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).lstrip(".") or "provider"


def file_names(converted: Sequence[Converted]) -> dict[Path, str]:
    """``<provider id>.yaml``; sources that share an id (zoho.eu, zoho.in: id
    zoho.com) are named after their source file instead, so none overwrites another."""
    ids = Counter(c.provider_id for c in converted)
    names: dict[Path, str] = {}
    taken: set[str] = set()
    for item in converted:
        stem = _safe_stem(item.provider_id if ids[item.provider_id] == 1 else item.source.stem)
        name, number = f"{stem}.yaml", 1
        while name in taken:
            number += 1
            name = f"{stem}-{number}.yaml"
        taken.add(name)
        names[item.source] = name
    return names


def _write(path: Path, text: str, force: bool) -> bool:
    """Write ``path`` whole (a watching service never reads half a file); False if it
    exists and ``force`` is not given."""
    if path.exists() and not force:
        return False
    temporary = path.with_name(f".{path.name}.importing")  # hidden: the registry skips it
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
    return True


def _convert_all(sources: list[Path], progress: bool) -> list[Converted | Failed]:
    if not progress:
        return [convert_file(path) for path in sources]
    with click.progressbar(sources, label="Importing", file=sys.stderr) as bar:
        return [convert_file(path) for path in bar]


def import_main(source: Path, out: Path, *, force: bool) -> int:
    """Import a file, or every .xml file of a folder, into ``out``; 0 ok, 1 failures
    or files skipped because they exist, 2 usage."""
    try:
        sources = _source_files(source)
        _prepare_out(out)
    except UsageError as exc:
        click.echo(f"{source}: {exc}", err=True)
        return EXIT_USAGE
    # Messages wait until the progress bar is done, so that they do not cut through it.
    results = _convert_all(sources, progress=source.is_dir())
    names = file_names([r for r in results if isinstance(r, Converted)])
    tally: Counter[str] = Counter()
    for result in results:
        outcome, warnings = _write_and_report(result, out, names, force)
        tally[outcome] += 1
        tally["warnings"] += warnings
    click.echo(
        f"{len(sources)} files: {tally['imported']} imported, "
        f"{tally['skipped']} skipped (exists; --force overwrites), "
        f"{tally['failed']} failed, {tally['warnings']} warnings",
        err=True,
    )
    return EXIT_FAILED if tally["failed"] or tally["skipped"] else EXIT_OK


def _write_and_report(
    result: Converted | Failed, out: Path, names: dict[Path, str], force: bool
) -> tuple[str, int]:
    """Write one result and say what happened: imported, skipped or failed, and the
    number of warnings shown (none for a file not written: they would be about nothing)."""
    if isinstance(result, Failed):
        click.echo(f"{result.source}: error: {result.reason}", err=True)
        return "failed", 0
    target = out / names[result.source]
    if not _write(target, result.text, force):
        click.echo(f"{result.source}: skipped: {target} exists", err=True)
        return "skipped", 0
    for warning in result.warnings:
        click.echo(f"{result.source}: warning: {warning}", err=True)
    # The file is valid by construction; `check` is the judge all the same.
    errors = [p for p in load_file(target)[1] if p.is_error]
    for problem in errors:
        click.echo(f"{result.source}: error: {problem}", err=True)
    return ("failed" if errors else "imported"), len(result.warnings)
