"""Test helpers: build providers from YAML text the way the service does; wait for
a condition rather than for a fixed time."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from autoconf import yamlio
from autoconf.domain_file import build_provider
from autoconf.errors import Problem
from autoconf.model import Provider

# `make test` sets TEST_FULL_LENGTH=1: a test with a short and a full form (the
# reload under load) runs the full one; a bare pytest runs the short one.
FULL_RUN = os.environ.get("TEST_FULL_LENGTH", "") not in ("", "0")


def wait_for(check: Callable[[], object], seconds: float, what: str, every: float = 0.02) -> float:
    """Poll until ``check()`` is true, failing after ``seconds``; how long it took."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < seconds, f"not within {seconds} s: {what}"
        time.sleep(every)
    return time.monotonic() - started


# docs/domain-files.md#default-ports, written out from the contract (not taken from the code),
# for tests that work out what a client should get from the YAML alone.
SPEC_DEFAULT_PORTS = {
    ("imap", "ssl"): 993,
    ("imap", "starttls"): 143,
    ("imap", "none"): 143,
    ("pop3", "ssl"): 995,
    ("pop3", "starttls"): 110,
    ("pop3", "none"): 110,
    ("smtp", "ssl"): 465,
    ("smtp", "starttls"): 587,
    ("smtp", "none"): 587,
}


# A domain file with three errors (port out of range, missing security, a typo
# for host), for tests that need a broken file beside good ones.
BROKEN_YAML = """\
provider:
  id: broken.example
domains:
  - broken.example
incoming:
  - type: imap
    host: imap.broken.example
    security: ssl
    port: 99999
outgoing:
  - type: smtp
    hots: smtp.broken.example
    security: starttls
"""


# The files the examples name (the hoster's logo) are beside them.
EXAMPLES_DIR = Path(__file__).resolve().parent / "data" / "examples"


def provider_from_yaml(text: str, base_dir: Path = EXAMPLES_DIR) -> Provider:
    tree, problems = yamlio.load(text, "test.yaml")
    assert not problems, problems
    provider, problems = build_provider(tree, "test.yaml", base_dir)
    assert provider is not None, [str(p) for p in problems]
    return provider


def server_yaml(kind: str, security: str, port: int | None = None, **extra: str) -> str:
    lines = [f"  - type: {kind}", f"    host: {kind}.example.com", f"    security: {security}"]
    if port is not None:
        lines.append(f"    port: {port}")
    lines += [f"    {key}: {value}" for key, value in extra.items()]
    return "\n".join(lines) + "\n"


def provider_text(incoming: str, outgoing: str, extra: str = "") -> str:
    return f"domains: [example.com]\nincoming:\n{incoming}outgoing:\n{outgoing}{extra}"


def yaml_problems(text: str, base_dir: Path = Path(".")) -> list[Problem]:
    """Every problem a domain file's text has (errors and warnings)."""
    tree, problems = yamlio.load(text, "test.yaml")
    assert not problems, problems
    return build_provider(tree, "test.yaml", base_dir)[1]
