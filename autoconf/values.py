"""What one value must be: plain checks, each returning the value as served.

A check raises :class:`Invalid` with every message that applies. They know
nothing of files or lines: :mod:`autoconf.typed_read` applies them to a domain
file's keys, the ISPDB import to the values of a provider's XML.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import urlsplit

from autoconf.address import InvalidDomain, normalize_domain
from autoconf.placeholders import PLACEHOLDER_LIKE, PLACEHOLDERS

_HOST_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
# Language tags compare without regard to case (RFC 5646): DE is de.
_LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*\Z")


class Invalid(ValueError):
    """A value that cannot be served; ``messages`` says every reason."""

    def __init__(self, *messages: str) -> None:
        super().__init__(messages[0])
        self.messages = messages


def describe(value: object) -> str:
    """How a wrong value reads in a message: its YAML type and a short form of it."""
    if value is None:
        return "nothing (null)"
    kind = {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
    }.get(type(value))
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if kind is None:
        return f"a {type(value).__name__}"
    text = repr(value) if isinstance(value, str) else str(value).lower()
    if len(text) > 40:
        text = text[:40] + "…"
    return f"{kind} {text}"


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    options = list(choices)
    close = difflib.get_close_matches(word, options, n=3, cutoff=0.6)
    # Equally close matches: the one listed first (the usual choice) wins.
    best = [
        c
        for c in close
        if difflib.SequenceMatcher(None, word, c).ratio()
        == difflib.SequenceMatcher(None, word, close[0]).ratio()
    ]
    match = sorted(best, key=options.index)[:1]
    if not match:  # "days" for "days_to_leave_messages_on_server"
        match = [c for c in options if len(word) >= 3 and c.lower().startswith(word.lower())]
    return f" (did you mean {match[0]!r}?)" if match else ""


def one_choice(
    value: object, choices: Sequence[str], elsewhere: Mapping[str, str] | None = None
) -> str:
    """``value`` as the choice it names (case aside).

    ``elsewhere`` maps values that are valid in other places (lower case) to
    the reason they are not valid here.
    """
    if not isinstance(value, str):
        raise Invalid(f"expected one of {', '.join(choices)}, got {describe(value)}")
    for choice in choices:
        if choice.lower() == value.strip().lower():
            return choice
    why = (elsewhere or {}).get(value.strip().lower())
    if why:
        raise Invalid(f"{value!r} {why}")
    raise Invalid(f"{value!r} is not one of {', '.join(choices)}{did_you_mean(value, choices)}")


def check_placeholders(text: str, allowed: Sequence[str]) -> None:
    messages = []
    for found in PLACEHOLDER_LIKE.findall(text):
        if found not in allowed:
            where = f"here only {', '.join(allowed)}" if allowed else "no placeholder here"
            if found in PLACEHOLDERS:
                messages.append(f"{found} is not allowed: {where}")
            else:
                messages.append(f"unknown placeholder {found!r}{did_you_mean(found, allowed)}")
    if messages:
        raise Invalid(*messages)


def template(text: str) -> str:
    """A string that may carry any of the placeholders (a user name)."""
    check_placeholders(text, PLACEHOLDERS)
    return text


def hostname(text: str, placeholders: Sequence[str] = ()) -> str:
    """The normalised host; the ``placeholders`` may stand for labels."""
    check_placeholders(text, placeholders)
    host, problem = check_hostname(text, placeholders)
    if problem:
        raise Invalid(problem)
    return host


def url(text: str) -> tuple[str, str | None]:
    """An http(s) URL, placeholders allowed: (the URL, a warning or None)."""
    check_placeholders(text, PLACEHOLDERS)
    if any(ch.isspace() for ch in text):
        raise Invalid(f"{text!r} is not a URL (it contains white space)")
    try:
        parts = urlsplit(text)
        netloc_host = parts.hostname
        parts.port  # noqa: B018 -- raises ValueError on a bad port
    except ValueError as exc:
        raise Invalid(f"{text!r} is not a URL ({exc})") from None
    if parts.scheme not in ("https", "http") or not netloc_host:
        raise Invalid(f"{text!r} is not an https:// URL")
    _, problem = check_hostname(netloc_host, PLACEHOLDERS)
    if problem:
        raise Invalid(f"{text!r}: {problem}")
    if parts.scheme == "http":
        return text, f"{text!r} uses http; clients may refuse it, use https"
    return text, None


def language_tag(tag: str) -> str:
    if not _LANGUAGE_TAG.match(tag):
        raise Invalid("not a language code such as en or de")
    return tag


def check_hostname(value: str, placeholders: Sequence[str] = ()) -> tuple[str, str | None]:
    """Return (normalised host, problem or None); placeholders may stand for labels."""
    used = [p for p in placeholders if p in value]
    if not used:
        try:
            return normalize_domain(value), None
        except InvalidDomain:
            return value, f"{value!r} is not a valid host name"
    if not value.isascii():
        return value, f"{value!r}: write the non-ASCII part in its xn-- form"
    pieces = re.split("(" + "|".join(map(re.escape, used)) + ")", value.strip())
    host = "".join(p if p in used else p.lower() for p in pieces).removesuffix(".")
    probe = host
    for placeholder in used:
        probe = probe.replace(placeholder, "example.com")
    bad = [label for label in probe.split(".") if not _HOST_LABEL.match(label)]
    if bad:
        return value, f"{value!r} is not a valid host name (label {bad[0]!r})"
    return host, None
