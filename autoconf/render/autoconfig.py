"""Thunderbird autoconfig (clientConfig 1.1), as real clients require it (SPEC §3).

Root ``<clientConfig version="1.1">`` without namespace or prefixes; servers in
the file's order after the plaintext rule; one ``<authentication>`` per method;
never a ``<password>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lxml import etree

from autoconf.address import Address, xml_escape
from autoconf.model import Provider, Security, Server
from autoconf.render.template import PLACEHOLDERS, Template, placeholder_values
from autoconf.render.xml import child, serialize

SOCKET_TYPES = {Security.SSL: "SSL", Security.STARTTLS: "STARTTLS", Security.NONE: "plain"}
# A provider with more domains than this lists only the one asked for: a hoster's
# 100,000 customer domains do not belong in every answer.
MAX_LISTED_DOMAINS = 100
_EXTRA_DOMAIN = "<!--autoconf:requested-domain-->"


@dataclass(frozen=True, slots=True)
class Compiled:
    template: Template
    listed: frozenset[str]


def compile_provider(provider: Provider) -> Compiled:
    concrete = provider.concrete_domains
    listed = concrete if len(concrete) <= MAX_LISTED_DOMAINS else ()

    root = etree.Element("clientConfig", version="1.1")
    email = child(root, "emailProvider", id=provider.id)
    for domain in listed:
        child(email, "domain", domain)
    email.append(etree.Comment(_EXTRA_DOMAIN[4:-3]))
    child(email, "displayName", provider.name)
    child(email, "displayShortName", provider.short_name)
    for server in provider.served_incoming:
        _server(child(email, "incomingServer", type=server.type.value), server)
    for server in provider.served_outgoing:
        _server(child(email, "outgoingServer", type=server.type.value), server)
    for doc in provider.documentation:
        documentation = child(email, "documentation", url=doc.url)
        for lang, text in doc.text:
            child(documentation, "descr", text, lang=lang)

    if provider.oauth2:
        oauth = child(root, "oAuth2")
        child(oauth, "issuer", provider.oauth2.issuer)
        child(oauth, "scope", provider.oauth2.scope)
        child(oauth, "authURL", provider.oauth2.auth_url)
        child(oauth, "tokenURL", provider.oauth2.token_url)
    if provider.webmail:
        child(child(root, "webMail"), "loginPage", url=provider.webmail)
    for tag, kind, dav in (
        ("addressBook", "carddav", provider.addressbook),
        ("calendar", "caldav", provider.calendar),
    ):
        if dav is not None:
            element = child(root, tag, type=kind)
            child(element, "username", dav.username)
            child(element, "authentication", "basic", system="http")
            child(element, "serverURL", dav.url)

    # The marker takes its line's indentation along, so that the filled-in
    # document reads as if lxml had written it.
    text = re.sub(r"\n *" + re.escape(_EXTRA_DOMAIN), _EXTRA_DOMAIN, serialize(root))
    return Compiled(Template(text, (*PLACEHOLDERS, _EXTRA_DOMAIN)), frozenset(listed))


def _server(element: etree._Element, server: Server) -> None:
    child(element, "hostname", server.host)
    child(element, "port", server.port)
    child(element, "socketType", SOCKET_TYPES[server.security])
    child(element, "username", server.username)
    for method in server.auth:
        child(element, "authentication", method.value)
    if server.pop3 is not None:
        options = server.pop3
        pop3 = child(element, "pop3")
        if options.leave_messages_on_server is not None:
            child(pop3, "leaveMessagesOnServer", str(options.leave_messages_on_server).lower())
        if options.days_to_leave_messages_on_server is not None:
            child(pop3, "daysToLeaveMessagesOnServer", options.days_to_leave_messages_on_server)
        if options.download_on_biff is not None:
            child(pop3, "downloadOnBiff", str(options.download_on_biff).lower())


def render(compiled: Compiled, address: Address | None, domain: str) -> bytes:
    """The document for one request: the address if it gave one, else its domain."""
    values = placeholder_values(address, domain)
    extra = "" if domain in compiled.listed else f"\n    <domain>{xml_escape(domain)}</domain>"
    values[_EXTRA_DOMAIN] = extra
    return compiled.template.fill(values)
