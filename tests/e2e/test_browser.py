"""The page for people in a real browser: Debian's Chromium, headless, driven by Playwright,
against the real `mail-autoconf serve`. Screenshots go to tests/screenshots/ (git-ignored)."""

from __future__ import annotations

import plistlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize, sync_playwright

from autoconf.render.languages import LANGUAGES
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
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}
# The desktop at 200% zoom is half as many CSS pixels; WCAG's reflow width is 320.
ZOOMED: ViewportSize = {"width": 640, "height": 450}
NARROWEST: ViewportSize = {"width": 320, "height": 640}
WIDTHS = {"desktop": DESKTOP, "phone": PHONE}


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
    page.click("a[hreflang='de']")
    page.wait_for_selector("html[lang='de']")
    assert page.inner_text("h1") == "Ihre E-Mail bei Example Mail einrichten"
    assert "alice@example.com" in page.inner_text("#settings h2")
    assert without_password(shown_servers(page, "incoming")) == from_yaml(
        "incoming", "alice@example.com"
    )
    page.screenshot(path=str(SCREENSHOTS / "settings-de.png"), full_page=True)


def test_follow_the_profile_link(page: Page, base_url: str, tmp_path: Path) -> None:
    page.goto(base_url + "/?emailaddress=alice@example.com")
    page.click("#steps-iphone summary")
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
        # The steps open and close without a script.
        summary = page.locator("#steps-thunderbird summary")
        summary.click()
        assert page.get_attribute("#steps-thunderbird", "open") is not None
        assert page.inner_text("#incoming-1 .username") == "bob"
        page.screenshot(path=str(SCREENSHOTS / "hosting-phone-nojs.png"), full_page=True)
    finally:
        context.close()


def open_every_step(page: Page) -> None:
    """Every program's steps open, as a reader who opens them all sees the page."""
    page.eval_on_selector_all("details", "all => all.forEach(d => { d.open = true; })")


AXE_SCRIPT = Axe().axe_script


def axe_context(browser: Browser, viewport: ViewportSize, lang: str = "en") -> BrowserContext:
    """A context whose every page has axe-core loaded before its own content (an init
    script, which the page's CSP does not govern), so each check only runs it."""
    context = browser.new_context(viewport=viewport, locale=lang)
    context.add_init_script(AXE_SCRIPT)
    return context


def violations(page: Page) -> list[str]:
    """axe-core's findings on the page as it is, every rule of its default set."""
    found = page.evaluate("axe.run(document, {resultTypes: ['violations']})")["violations"]
    return [
        f"{v['id']}: {v['help']} ({', '.join(str(n['target']) for n in v['nodes'])})" for v in found
    ]


def test_axe_finds_what_it_should(browser: Browser, base_url: str) -> None:
    """The check is not vacuous: a page of ours with an image without alt text and
    grey-on-grey text, made so in the browser, has both found."""
    context = axe_context(browser, DESKTOP)
    try:
        page = context.new_page()
        page.goto(base_url + "/")
        page.evaluate(
            """() => {
                document.body.append(document.createElement('img'));
                document.querySelector('h1').style.color = '#eee';
            }"""
        )
        found = " ".join(violations(page))
        assert "image-alt" in found and "color-contrast" in found
    finally:
        context.close()


@pytest.mark.parametrize("lang", list(LANGUAGES))
@pytest.mark.parametrize("width", list(WIDTHS))
def test_every_language_at_both_widths_has_no_axe_violation(
    browser: Browser, base_url: str, lang: str, width: str
) -> None:
    """The settings page (every step opened, the hoster's logo and colour too), the
    form and an error page: 0 violations; a screenshot of each language and width."""
    context = axe_context(browser, WIDTHS[width], lang)
    try:
        page = context.new_page()
        page.goto(f"{base_url}/?emailaddress=alice@example.com&lang={lang}")
        assert page.get_attribute("html", "lang") == lang
        open_every_step(page)
        assert violations(page) == []
        page.screenshot(path=str(SCREENSHOTS / f"settings-{lang}-{width}.png"), full_page=True)
        for query in ("emailaddress=bob@example.org", "emailaddress=a@nope.example", ""):
            page.goto(f"{base_url}/?{query}&lang={lang}")
            assert violations(page) == [], query
        assert page.evaluate("document.documentElement.scrollWidth") <= WIDTHS[width]["width"]
    finally:
        context.close()


@pytest.mark.parametrize("viewport", [ZOOMED, NARROWEST], ids=["zoom-200", "320px"])
def test_at_200_percent_and_320_pixels_nothing_is_cut_or_broken_mid_word(
    browser: Browser, base_url: str, viewport: ViewportSize
) -> None:
    """Nothing wider than the screen, and every value to type wraps only after a
    dot, an @ or a slash (read from where the browser put each character)."""
    context = browser.new_context(viewport=viewport)
    try:
        page = context.new_page()
        for address in ("alice@example.com", "bob@müller.example"):
            page.goto(f"{base_url}/?emailaddress={address}")
            assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
            breaks: list[str] = page.eval_on_selector_all(
                ".value",
                """values => values.flatMap(value => {
                    const found = [];
                    const walker = document.createTreeWalker(value, NodeFilter.SHOW_TEXT);
                    let top = null, last = null;
                    while (walker.nextNode()) {
                        const node = walker.currentNode;
                        for (let i = 0; i < node.length; i++) {
                            const range = document.createRange();
                            range.setStart(node, i);
                            range.setEnd(node, i + 1);
                            const rect = range.getClientRects()[0];
                            if (!rect) continue;
                            if (top !== null && rect.top > top + 2) found.push(last);
                            top = rect.top;
                            last = node.data[i];
                        }
                    }
                    return found;
                })""",
            )
            assert set(breaks) <= {".", "@", "/"}, breaks
        # The long names do wrap at 320 pixels (the check above is not vacuous there).
        if viewport is NARROWEST:
            page.goto(f"{base_url}/?emailaddress=someone.with.a.long.name@example.com")
            assert page.evaluate(
                "[...document.querySelectorAll('.value')].some(v => v.getClientRects().length > 1)"
            )
    finally:
        context.close()


def test_the_keyboard_alone_reaches_everything(page: Page, base_url: str) -> None:
    page.goto(base_url + "/")

    def tab_to(check: str, limit: int = 40) -> None:
        for _ in range(limit):
            page.keyboard.press("Tab")
            if page.evaluate(check):
                return
        raise AssertionError(f"Tab never reached {check}")

    tab_to("document.activeElement.id === 'emailaddress'")
    page.keyboard.type("alice@example.com")
    page.keyboard.press("Enter")
    page.wait_for_selector("#settings")
    tab_to("document.activeElement.closest('#steps-thunderbird') !== null")
    # Where the focus is can be seen.
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    page.keyboard.press("Enter")
    assert page.get_attribute("#steps-thunderbird", "open") is not None
    tab_to("document.activeElement.closest('#steps-iphone') !== null", limit=80)
    page.keyboard.press("Enter")
    tab_to("document.activeElement.id === 'profile'")
    with page.expect_download() as download:
        page.keyboard.press("Enter")
    assert download.value.suggested_filename == "example.com.mobileconfig"


def test_the_page_weighs_under_50_kb(browser: Browser, base_url: str) -> None:
    """Everything the browser fetches for the page (HTML with its QR code, CSS, logo)."""
    context = browser.new_context(viewport=PHONE)
    try:
        page = context.new_page()
        sizes: dict[str, int] = {}
        page.on("response", lambda r: sizes.__setitem__(r.url, len(r.body())))
        for address in ("alice@example.com", "bob@example.org"):  # the second has a logo
            sizes.clear()
            page.goto(f"{base_url}/?emailaddress={address}")
            page.wait_for_load_state("networkidle")
            assert len(sizes) >= 2, sizes
            assert sum(sizes.values()) < 50 * 1024, sizes
    finally:
        context.close()
