"""Thunderbird autoconfig (clientConfig 1.1), as real clients require it
(docs/http.md#thunderbird-autoconfig).

Root ``<clientConfig version="1.1">`` without namespace or prefixes; servers in
the file's order after the plaintext rule; one ``<authentication>`` per method;
never a ``<password>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from lxml import etree

from autoconf.address import Address, xml_escape
from autoconf.model import Provider, Security, Server
from autoconf.render.identity import DOMAINS, identity_values, shape_of
from autoconf.render.template import Template, placeholder_values
from autoconf.render.xml import child, serialize

SOCKET_TYPES = {Security.SSL: "SSL", Security.STARTTLS: "STARTTLS", Security.NONE: "plain"}
# A provider with more domains than this lists only the one asked for: a hoster's
# 100,000 customer domains do not belong in every answer.
MAX_LISTED_DOMAINS = 100
_DOMAIN_INDENT = "\n    "


@dataclass(frozen=True, slots=True)
class AutoconfigDocument:
    template: Template  # shared by providers of one shape
    identity: Mapping[str, str]  # this provider's names, for the template's slots
    listed: frozenset[str]  # the domains the document names without being asked


def domains_block(provider: Provider) -> tuple[str, frozenset[str]]:
    """The provider's ``<domain>`` elements, and the domains they name."""
    concrete = provider.concrete_domains
    listed = concrete if len(concrete) <= MAX_LISTED_DOMAINS else ()
    block = "".join(f"{_DOMAIN_INDENT}<domain>{xml_escape(d)}</domain>" for d in listed)
    return block, frozenset(listed)


def compile_provider(provider: Provider) -> AutoconfigDocument:
    """Everything but the address, for one provider (the registry shares shapes instead)."""
    block, listed = domains_block(provider)
    return AutoconfigDocument(
        compile_shape(shape_of(provider)), identity_values(provider, block), listed
    )


def compile_shape(shape: Provider) -> Template:
    """The document with the provider's names, its domains and the address as slots."""
    root = etree.Element("clientConfig", version="1.1")
    email = child(root, "emailProvider", id=shape.id)
    email.append(etree.Comment(DOMAINS))
    child(email, "displayName", shape.name)
    child(email, "displayShortName", shape.short_name)
    for server in shape.served_incoming:
        _server(child(email, "incomingServer", type=server.type.value), server)
    for server in shape.served_outgoing:
        _server(child(email, "outgoingServer", type=server.type.value), server)
    for doc in shape.documentation:
        documentation = child(email, "documentation", url=doc.url)
        for lang, text in doc.text:
            child(documentation, "descr", text, lang=lang)

    if shape.oauth2:
        oauth = child(root, "oAuth2")
        child(oauth, "issuer", shape.oauth2.issuer)
        child(oauth, "scope", shape.oauth2.scope)
        child(oauth, "authURL", shape.oauth2.auth_url)
        child(oauth, "tokenURL", shape.oauth2.token_url)
    if shape.webmail:
        child(child(root, "webMail"), "loginPage", url=shape.webmail)
    for tag, kind, dav in (
        ("addressBook", "carddav", shape.addressbook),
        ("calendar", "caldav", shape.calendar),
    ):
        if dav is not None:
            element = child(root, tag, type=kind)
            child(element, "username", dav.username)
            child(element, "authentication", "basic", system="http")
            child(element, "serverURL", dav.url)

    # The domains go where the comment stands, with their own line breaks.
    text = serialize(root).replace(f"{_DOMAIN_INDENT}<!--{DOMAINS}-->", DOMAINS)
    return Template(text)


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


def render(
    compiled: AutoconfigDocument,
    address: Address | None,
    domain: str,
    user: Mapping[str, str] | None = None,
) -> bytes:
    """The document for one request: the address if it gave one, else its domain;
    ``user``: the per-user slots' values (:func:`autoconf.render.user.user_values`)."""
    values = {**compiled.identity, **placeholder_values(address, domain)}
    if user:
        values.update(user)
    if domain not in compiled.listed:  # a wildcard's, the catch-all's, or a long list's
        values[DOMAINS] += f"{_DOMAIN_INDENT}<domain>{xml_escape(domain)}</domain>"
    return compiled.template.fill(values)
