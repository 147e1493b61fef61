"""An ISPDB document as a domain file's data: :func:`domain_data`.

<emailProvider>'s id, names and domains, its servers (:mod:`autoconf.ispdb.servers`),
and the blocks beside them: documentation, webmail, OAuth2, CalDAV and CardDAV.
Raises :class:`ImportFailed` when no usable domain or server is left.
"""

from __future__ import annotations

from collections import Counter

from lxml import etree

from autoconf.address import InvalidDomain, normalize_domain
from autoconf.ispdb.document import (
    Data,
    ImportFailed,
    Notes,
    child_text,
    element_text,
    elements,
    note_entities,
)
from autoconf.ispdb.servers import import_servers, leave_out_unknown
from autoconf.ispdb.values import (
    checked_language,
    checked_name,
    checked_template,
    checked_url,
    checked_url_value,
    fix_placeholders,
)

OAUTH2_FIELDS = {
    "issuer": "issuer",
    "scope": "scope",
    "authURL": "auth_url",
    "tokenURL": "token_url",
}


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
        provider_id, problem = checked_name(raw_id)
        if provider_id is None:
            notes.add(where, f"id left out ({problem}): the first domain is the id")
        else:
            if provider_id != raw_id:
                notes.add(where, f"id {raw_id!r} written as {provider_id!r}")
            meta["id"] = provider_id
    name = child_text(provider, "displayName", where, notes)
    if name:
        meta["name"] = name
    short = child_text(provider, "displayShortName", where, notes)
    misspelt = child_text(provider, "displayNameShort", where, notes)
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
        where, raw = f"domain[{index}]", element_text(element)
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
    url = checked_url(element.get("url") or "", where, f"<{element.tag}>", notes)
    if url is None:
        return None
    texts: dict[str, str] = {}
    for child in elements(element):
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
    text, raw_lang = element_text(child), child.get("lang")
    primary, dash, rest = (raw_lang or "en").strip().partition("-")
    lang = primary.lower() + dash + rest  # "EN-us" is "en-us": the schema wants it so
    problem = checked_language(lang)
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
    for element in elements(provider):
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
    for child in elements(block):
        if child.tag == "loginPage" and url is None:
            url = checked_url(child.get("url") or "", "webMail", "<loginPage url>", notes)
        else:
            notes.left_out("webMail", child, "our format has no key for it")
    return {"url": url} if url else None


def _oauth2(block: etree._Element, notes: Notes) -> Data | None:
    """All four values, or nothing: the format needs them all."""
    where = "oAuth2"
    leave_out_unknown(block, where, tuple(OAUTH2_FIELDS), notes)
    values: Data = {}
    for tag, key in OAUTH2_FIELDS.items():
        raw = child_text(block, tag, where, notes)
        if raw is None:
            value, problem = None, "missing"
        elif tag == "issuer":
            value, problem = checked_name(raw)
        elif tag == "scope":
            value, problem = raw, ""
        else:
            value, problem = checked_url_value(fix_placeholders(raw, where, notes))
        if value is None:
            notes.add(where, f"<{tag}>: {problem}; the whole <oAuth2> left out")
            return None
        values[key] = value
    return values


def _dav(block: etree._Element, notes: Notes) -> Data | None:
    """<calendar>/<addressBook>: a CalDAV/CardDAV URL and user name (HTTP basic auth)."""
    where = block.tag
    for child in elements(block):
        if child.tag == "authentication" and element_text(child).lower() != "basic":
            notes.left_out(where, child, f"{element_text(child)!r}: we serve HTTP basic only")
        elif child.tag not in ("serverURL", "username", "authentication"):
            notes.left_out(where, child, "our format has no key for it")
    raw_url = child_text(block, "serverURL", where, notes)
    url = checked_url(raw_url or "", where, "<serverURL>", notes)
    if url is None:
        return None
    dav: Data = {"url": url}
    raw_user = child_text(block, "username", where, notes)
    if raw_user is not None:
        username, problem = checked_template(raw_user, where, notes)
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
    note_entities(root, notes)
    for extra in root.findall("emailProvider")[1:]:
        notes.left_out("", extra, "only the first <emailProvider> is imported")
    leave_out_unknown(root, "clientConfig", _ROOT_CHILDREN, notes)
    leave_out_unknown(provider, "emailProvider", _PROVIDER_CHILDREN, notes)

    data: Data = {}
    meta = _provider_meta(provider, notes)
    if meta:
        data["provider"] = meta
    data["domains"] = _domains(provider, notes)
    if not data["domains"]:
        raise ImportFailed("no usable <domain>")
    data["incoming"] = import_servers(provider, "incomingServer", notes, None)
    if not data["incoming"]:
        raise ImportFailed("no IMAP or POP3 server left to import")
    first_login = data["incoming"][0]["username"]
    data["outgoing"] = import_servers(provider, "outgoingServer", notes, first_login)
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
