"""``mail-autoconf probe``'s check of the OAuth issuer a file names (docs/cli.md#probe).

What draft-ietf-mailmaint-oauth-public-06 has a public client rely on: the
issuer's RFC 8414 metadata over HTTPS, whose ``issuer`` is the issuer itself,
whose authorization and token endpoints are the file's ``auth_url`` and
``token_url`` (the autoconfig ``<oAuth2>`` block and the metadata must not send
a client two ways), PKCE with ``S256`` (RFC 7636), and an RFC 7591
``registration_endpoint`` (reported when absent: clients then need a client id
handed to them, ``client_id``). One GET, bounded in time and size.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from autoconf.model import OAuth2
from autoconf.placeholders import EMAILDOMAIN, fill
from autoconf.probe.checks import reason

MAX_METADATA = 256 * 1024
WELL_KNOWN = "/.well-known/oauth-authorization-server"


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    verdict: str  # "ok", "FAIL", or "note" (reported, not a failure)
    detail: str

    @property
    def failed(self) -> bool:
        return self.verdict == "FAIL"


def metadata_url(issuer: str) -> str:
    """RFC 8414, section 3: the well-known path goes between the host and the path."""
    parts = urlsplit(issuer)
    path = parts.path.rstrip("/")
    return urlunsplit(("https", parts.netloc, WELL_KNOWN + path, "", ""))


def _fetch(url: str, context: ssl.SSLContext, timeout: float) -> dict[str, object]:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    handler = urllib.request.HTTPSHandler(context=context)
    opener = urllib.request.build_opener(handler)  # no proxies from the environment: a fixed URL
    with opener.open(request, timeout=timeout) as response:
        body = response.read(MAX_METADATA + 1)
    if len(body) > MAX_METADATA:
        raise ValueError(f"the metadata is over {MAX_METADATA} bytes")
    data = json.loads(body)
    if not isinstance(data, dict):
        raise ValueError("the metadata is no JSON object")
    return data


def probe_issuer(
    oauth: OAuth2, domain: str, context: ssl.SSLContext, timeout: float
) -> list[Check]:
    """Each check of the issuer, in order; the first failing fetch ends them."""
    issuer = fill(oauth.issuer_url, {EMAILDOMAIN: domain})
    url = metadata_url(issuer)
    try:
        data = _fetch(url, context, timeout)
    except urllib.error.HTTPError as exc:
        return [Check("metadata", "FAIL", f"{url}: HTTP {exc.code}")]
    except (OSError, ValueError, ssl.SSLError) as exc:
        return [Check("metadata", "FAIL", f"{url}: {reason(exc)}")]
    checks = [Check("metadata", "ok", url)]

    def same(name: str, key: str, want: str) -> None:
        have = data.get(key)
        if have == want:
            checks.append(Check(name, "ok", want))
        else:
            checks.append(Check(name, "FAIL", f"{key} is {have!r}, the file says {want!r}"))

    same("issuer", "issuer", issuer)
    same("authorization", "authorization_endpoint", fill(oauth.auth_url, {EMAILDOMAIN: domain}))
    same("token", "token_endpoint", fill(oauth.token_url, {EMAILDOMAIN: domain}))
    methods = data.get("code_challenge_methods_supported")
    if isinstance(methods, list) and "S256" in methods:
        checks.append(Check("pkce", "ok", "S256 offered"))
    else:
        checks.append(
            Check(
                "pkce", "FAIL", f"S256 not offered (code_challenge_methods_supported: {methods!r})"
            )
        )
    registration = data.get("registration_endpoint")
    if isinstance(registration, str) and registration.startswith("https://"):
        checks.append(Check("registration", "ok", registration))
    else:
        why = "no registration_endpoint: a client cannot register itself (RFC 7591)"
        checks.append(
            Check(
                "registration",
                "note",
                why + ("" if oauth.client_id else "; and the file gives no client_id"),
            )
        )
    return checks


def format_checks(issuer: str, checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines = [f"oauth2 issuer {issuer}"]
    lines += [f"{c.name.ljust(width)}  {c.verdict.ljust(4)}  {c.detail}" for c in checks]
    return "\n".join(lines)
