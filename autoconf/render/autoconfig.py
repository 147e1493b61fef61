"""Thunderbird autoconfig (clientConfig 1.2, draft-ietf-mailmaint-autoconfig-06),
as real clients require it (docs/http.md#thunderbird-autoconfig).

Root ``<clientConfig version="1.2">`` without namespace or prefixes; servers in
the file's order after the plaintext rule; one ``<authentication>`` per method;
never a ``<password>``. What 1.2 adds stands where 1.1 readers skip it
(docs/clients.md#autoconfig-12-what-each-client-reads): the MX domains after the
mail domains, JMAP, EWS and ActiveSync after every IMAP and POP3 server, the
rest beside ``emailProvider``.
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

VERSION = "1.2"
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
    root = etree.Element("clientConfig", version=VERSION)
    email = child(root, "emailProvider", id=shape.id)
    email.append(etree.Comment(DOMAINS))
    for mx in shape.mx_domains:
        child(email, "domain", mx, purpose="mx")
    child(email, "displayName", shape.name)
    child(email, "displayShortName", shape.short_name)
    for server in shape.served_incoming:
        _server(child(email, "incomingServer", type=server.type.value), server)
    # After IMAP and POP3: "the first server of a kind is the choice" (Thunderbird
    # 153 reads type="ews" too, and would otherwise offer it first).
    for kind, url in (("jmap", shape.jmap), ("ews", shape.ews), ("activeSync", shape.activesync)):
        if url:
            _url_server(child(email, "incomingServer", type=kind), url, _login(shape))
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
        if shape.oauth2.client_id:
            child(oauth, "clientID", shape.oauth2.client_id)
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
            child(element, "serverURL", dav.url)  # 1.1's name
            child(element, "url", dav.url)  # 1.2's
    if shape.managesieve is not None:
        sieve = shape.managesieve
        element = child(root, "setupServer", type="managesieve")
        child(element, "hostname", sieve.host)
        child(element, "port", sieve.port)
        child(element, "socketType", SOCKET_TYPES[sieve.security])
        child(element, "username", sieve.username)
        child(element, "authentication", "password-cleartext")

    # The domains go where the comment stands, with their own line breaks.
    text = serialize(root).replace(f"{_DOMAIN_INDENT}<!--{DOMAINS}-->", DOMAINS)
    return Template(text)


def _login(shape: Provider) -> str:
    """The user name of the URL-based servers: the first incoming server's."""
    return shape.incoming[0].username if shape.incoming else "%EMAILADDRESS%"


def _url_server(element: etree._Element, url: str, username: str) -> None:
    child(element, "url", url)
    # 1.2's HTTP form. Thunderbird 153 reads no "basic" (it takes only its own
    # names), so it skips these servers and keeps the IMAP/POP3 ones as before.
    child(element, "authentication", "basic", system="http")
    child(element, "username", username)


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
