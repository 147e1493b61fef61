"""What the access log shows of a request target."""

from __future__ import annotations

import pytest

from autoconf.server import loggable_target


@pytest.mark.parametrize(
    ("path", "query", "mode", "shown"),
    [
        (
            "/mail/config-v1.1.xml",
            "emailaddress=Alice%40example.com",
            "redact",
            "/mail/config-v1.1.xml?emailaddress=***@example.com",
        ),
        (
            "/mail/config-v1.1.xml",
            "emailaddress=Alice@example.com",
            "full",
            "/mail/config-v1.1.xml?emailaddress=Alice@example.com",
        ),
        (
            "/autodiscover/autodiscover.json/v1.0/bob@example.org",
            "Protocol=x",
            "redact",
            "/autodiscover/autodiscover.json/v1.0/***@example.org?Protocol=x",
        ),
        ("/healthz", "", "redact", "/healthz"),
    ],
)
def test_addresses_as_the_setting_says(path: str, query: str, mode: str, shown: str) -> None:
    assert loggable_target(path, query, mode) == shown


def test_hash_is_stable_and_hides_the_local_part() -> None:
    first = loggable_target("/mobileconfig", "emailaddress=Carol%40example.com", "hash")
    again = loggable_target("/mobileconfig", "emailaddress=carol@example.com", "hash")
    assert first == again and "arol" not in first and first.endswith("@example.com")


def test_no_request_writes_a_line_of_its_own() -> None:
    shown = loggable_target("/x", "a=1%0d%0a127.0.0.1 GET /forged 200%00", "redact")
    assert "\n" not in shown and "\r" not in shown and "\x00" not in shown
    assert len(loggable_target("/x", "a=" + "b" * 10_000, "redact")) <= 301
