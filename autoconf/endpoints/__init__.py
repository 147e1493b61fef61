"""Every endpoint the service answers, and the route from a path to each.

The clients' endpoints (:mod:`.clients`), the page (:mod:`.page`) and the
operator's (:mod:`.operator`), routed by one dictionary lookup, as Outlook
writes its paths (in any letter case, the v2 form with the address in the path).
"""

from __future__ import annotations

from autoconf.endpoints.clients import (
    AUTOCONFIG,
    CALDAV,
    CARDDAV,
    JSON_ENDPOINT,
    MOBILECONFIG,
    PACC,
    POX,
)
from autoconf.endpoints.operator import HEALTHZ, TLS_ALLOWED, metrics_endpoint
from autoconf.endpoints.page import LOGO, PAGE, STYLE
from autoconf.metrics import Metrics
from autoconf.pipeline import Endpoint, Route

CLIENT_PATHS = {
    "/mail/config-v1.1.xml": AUTOCONFIG,
    "/.well-known/autoconfig/mail/config-v1.1.xml": AUTOCONFIG,
    "/autodiscover/autodiscover.xml": POX,
    "/autodiscover/autodiscover.json": JSON_ENDPOINT,
    "/mobileconfig": MOBILECONFIG,
    "/.well-known/user-agent-configuration.json": PACC,
    "/.well-known/caldav": CALDAV,
    "/.well-known/carddav": CARDDAV,
}
# The v2 form with the address in the path: .../v1.0/alice@example.com.
JSON_V1_PREFIX = "/autodiscover/autodiscover.json/v1.0/"
# Outlook writes the autodiscover paths in any letter case; the rest of the path
# (an address in the v2 form) is left as it is.
CASE_INSENSITIVE_PREFIXES = ("/autodiscover/autodiscover.xml", "/autodiscover/autodiscover.json")


def router(metrics: Metrics) -> Route:
    """The route of one app (its /metrics tells its own metrics)."""
    paths: dict[str, Endpoint] = {
        **CLIENT_PATHS,
        "/": PAGE,
        "/static/page.css": STYLE,
        "/logo": LOGO,
        "/healthz": HEALTHZ,
        "/metrics": metrics_endpoint(metrics),
        "/tls/allowed": TLS_ALLOWED,
    }

    def route(path: str) -> tuple[Endpoint, str] | None:
        """The endpoint of a path and the address the path carries ("" if none);
        None for a path that names no endpoint."""
        endpoint = paths.get(path)
        if endpoint is not None:
            return endpoint, ""
        return client_route(path)

    return route


def client_route(path: str) -> tuple[Endpoint, str] | None:
    """The client endpoint of a path written in another letter case, or of the v2
    form with the address in the path."""
    lowered = path[:40].lower()
    for prefix in CASE_INSENSITIVE_PREFIXES:
        if lowered.startswith(prefix):
            path = prefix + path[len(prefix) :]
            break
    else:
        return None
    endpoint = CLIENT_PATHS.get(path)
    if endpoint is not None:
        return endpoint, ""
    if path.startswith(JSON_V1_PREFIX):
        # As PEP 3333 hands it over: the decoded path's bytes as latin-1. Bytes that
        # are not UTF-8 are kept (surrogateescape) for the view to refuse.
        raw = path[len(JSON_V1_PREFIX) :].encode("latin-1", "replace")
        email = raw.decode("utf-8", "surrogateescape")
        # Not empty, no leading slash, no line feed after the first character (as
        # Werkzeug's <path:...>, which served this route before, matched).
        if email and email[0] != "/" and "\n" not in email[1:]:
            return JSON_ENDPOINT, email
    return None
