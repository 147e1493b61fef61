"""The page for people in a real browser: Debian's Chromium, headless, driven by Playwright,
against the real `mail-autoconf serve`. Screenshots go to tests/screenshots/ (git-ignored)."""

from __future__ import annotations

import plistlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from playwright.sync_api import Browser, Page, sync_playwright

from tests.conftest import EXAMPLES
from tests.e2e.processes import start_service
from tests.helpers import SPEC_DEFAULT_PORTS

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[1] / "screenshots"
# Chromium as the environment requires: no sandbox as root, and none of its own
# network traffic (the machine has no internet, and a test talks only to 127.0.0.1).
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    started, port = start_service(EXAMPLES, tmp_path_factory.mktemp("browser"))
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        started.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=DESKTOP, accept_downloads=True, locale="en-US")
    try:
        yield context.new_page()
    finally:
        context.close()


def shown_servers(page: Page, kind: str) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = page.eval_on_selector_all(
        f"table[id^='{kind}-']",
        """tables => tables.map(t => Object.fromEntries(
            [...t.querySelectorAll('td')].map(td => [td.className, td.innerText.trim()])))""",
    )
    return rows


def from_yaml(kind: str, address: str) -> list[dict[str, Any]]:
    data = yaml.safe_load((EXAMPLES / "example.com.yaml").read_text(encoding="utf-8"))
    return [
        {
            "protocol": s["type"].upper(),
            "host": s["host"],
            "port": str(s.get("port", SPEC_DEFAULT_PORTS[(s["type"], s["security"])])),
            "security": {"ssl": "SSL/TLS", "starttls": "STARTTLS"}[s["security"]],
            "username": s.get("username", "%EMAILADDRESS%").replace("%EMAILADDRESS%", address),
        }
        for s in data[kind]
    ]


def without_password(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: v for k, v in row.items() if k != "password"} for row in rows]


def test_fill_in_submit_and_read_the_settings(page: Page, base_url: str) -> None:
    page.goto(base_url + "/")
    assert page.get_attribute("html", "lang") == "en"
    page.get_by_label("Email address").fill("alice@example.com")
    page.get_by_role("button", name="Show settings").click()
    page.wait_for_selector("#settings")
    assert without_password(shown_servers(page, "incoming")) == from_yaml(
        "incoming", "alice@example.com"
    )
    assert without_password(shown_servers(page, "outgoing")) == from_yaml(
        "outgoing", "alice@example.com"
    )
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "settings-desktop.png"), full_page=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=str(SCREENSHOTS / "settings-phone.png"), full_page=True)
    # Nothing is wider than a phone's screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_switch_to_german(page: Page, base_url: str) -> None:
    page.goto(base_url + "/?emailaddress=alice@example.com")
    page.click("#language")
    page.wait_for_selector("html[lang='de']")
    assert page.inner_text("h1") == "E-Mail einrichten"
    assert "alice@example.com" in page.inner_text("#settings h2")
    assert without_password(shown_servers(page, "incoming")) == from_yaml(
        "incoming", "alice@example.com"
    )
    page.screenshot(path=str(SCREENSHOTS / "settings-de.png"), full_page=True)


def test_follow_the_profile_link(page: Page, base_url: str, tmp_path: Path) -> None:
    page.goto(base_url + "/?emailaddress=alice@example.com")
    with page.expect_download() as download:
        page.click("#profile")
    assert download.value.suggested_filename == "example.com.mobileconfig"
    saved = tmp_path / "profile.mobileconfig"
    download.value.save_as(saved)
    profile = plistlib.loads(saved.read_bytes())
    mail = profile["PayloadContent"][0]
    assert mail["EmailAddress"] == "alice@example.com"
    assert mail["IncomingMailServerHostName"] == "imap.example.com"


def test_a_hostile_address_is_shown_as_text(page: Page, base_url: str) -> None:
    alerts: list[str] = []
    page.on("dialog", lambda dialog: (alerts.append(dialog.message), dialog.dismiss()))
    for address in ['"<img src=x onerror=alert(1)>"@example.com', "<script>alert(2)</script>@x"]:
        page.goto(base_url + "/")
        page.get_by_label("Email address").fill(address)
        page.get_by_label("Email address").press("Enter")
        page.wait_for_load_state()
    assert alerts == []
    assert page.locator("script").count() == 0


def test_works_without_javascript(browser: Browser, base_url: str) -> None:
    context = browser.new_context(java_script_enabled=False, viewport=PHONE)
    try:
        page = context.new_page()
        page.goto(base_url + "/")
        page.fill("#emailaddress", "bob@example.org")
        page.click("button[type=submit]")
        page.wait_for_selector("#settings")
        assert page.inner_text("#incoming-1 .host") == "mail.hosting.example.org"
        assert page.inner_text("#incoming-1 .username") == "bob"
        page.screenshot(path=str(SCREENSHOTS / "hosting-phone-nojs.png"), full_page=True)
    finally:
        context.close()
