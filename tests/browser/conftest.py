"""Fixtures for the admin browser tests: Playwright driving Debian's Chromium.

Without the `playwright` package or /usr/bin/chromium (`make browser-deps`
installs Chromium when it can) the browser tests are skipped with the reason.
"""

import os
import shutil

import pytest

from tests.support import PASSWORD

CHROMIUM = os.environ.get("SV_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def pytest_configure(config):
    config.addinivalue_line("markers", "browser: drives a real browser (Playwright + Chromium)")


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install playwright)"
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        return f"no Chromium at {CHROMIUM} (make browser-deps installs it as root on Debian)"
    return None


@pytest.fixture(scope="module")
def chromium():
    missing = _missing()
    if missing:
        pytest.skip(f"browser tests need a browser: {missing}")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop running in this thread while it
    # is open, and Django refuses ORM calls when it sees one. The tests' ORM calls
    # are plain synchronous code, so say so, for this module only (the loop stops
    # when the module's tests are done).
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            yield browser
            browser.close()


@pytest.fixture
def page(chromium, live_server, settings):
    """A fresh browser tab (own cookies) pointed at the live server."""
    # Every test logs in from 127.0.0.1; the per-IP sign-in limit is tested elsewhere.
    settings.SV_RATE_LIMITS = {**settings.SV_RATE_LIMITS, "sign_in": (1000, 10)}
    context = chromium.new_context(
        base_url=live_server.url, viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(5_000)
    tab = context.new_page()
    yield tab
    context.close()


@pytest.fixture
def login(page):
    """`login(email)`: sign in on the admin login page as that user."""

    def sign_in(email: str, password: str = PASSWORD):
        page.goto("/admin/login/?next=/admin/")
        page.fill("#id_username", email)
        page.fill("#id_password", password)
        page.click("input[type=submit]")
        page.wait_for_url("**/admin/")
        return page

    return sign_in
