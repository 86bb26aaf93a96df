"""A real OpenID Provider for the sign-in tests: oidc-provider (Node), started once per session.

`make test` installs it (npm ci into tests/oidc/node_modules); without node the tests skip.
"""

import json
import shutil
import subprocess
import uuid
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
import requests
from rest_framework.test import APIClient

HERE = Path(__file__).resolve().parent
APP = "http://testserver"
PASSWORD = "provider password"


class OpenIdProvider:
    """The running provider: its issuer, its test controls and one registered client."""

    def __init__(self, issuer: str):
        self.issuer = issuer
        self.client = self.register(
            [f"{APP}/api/v1/auth/oauth/{pid}/callback" for pid in ("test", "trusted", "other")]
        )

    def register(self, redirect_uris: list[str], **metadata) -> dict:
        """A new client (dynamic registration), e.g. with another authentication method."""
        response = requests.post(
            f"{self.issuer}/reg",
            json={
                "redirect_uris": redirect_uris,
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                **metadata,
            },
            timeout=5,
        )
        response.raise_for_status()
        return response.json()

    def add_account(self, *, email: str, email_verified: bool = True, name: str = "") -> str:
        """A user at the provider; returns their login (the `sub`)."""
        sub = f"sub-{uuid.uuid4().hex[:12]}"
        self._control(
            "accounts",
            sub=sub,
            email=email,
            email_verified=email_verified,
            name=name,
            password=PASSWORD,
        )
        return sub

    def tamper(self, mode: str) -> None:
        self._control("tamper", mode=mode)

    def delay(self, ms: int) -> None:
        self._control("delay", ms=ms)

    def _control(self, what: str, **body) -> None:
        requests.post(f"{self.issuer}/test/{what}", json=body, timeout=5).raise_for_status()

    def settings(self, **overrides) -> dict:
        """A provider entry of SV_OAUTH_PROVIDERS for this provider and client."""
        return {
            "issuer": self.issuer,
            "client_id": self.client["client_id"],
            "client_secret": self.client["client_secret"],
            "scopes": ["openid", "email", "profile", "offline_access"],
            "authorize_params": {"prompt": "consent"},
            **overrides,
        }


def _missing() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed (the OAuth tests run a real OpenID Provider on Node 20)"
    if not (HERE / "node_modules" / "oidc-provider").is_dir():
        npm = shutil.which("npm")
        if npm is None:
            return "npm is not installed (make test installs tests/oidc's oidc-provider)"
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True)  # noqa: S603
    return None


@pytest.fixture(scope="session")
def oidc_provider():
    missing = _missing()
    if missing:
        pytest.skip(missing)
    process = subprocess.Popen(  # noqa: S603
        [shutil.which("node"), "provider.mjs"],
        cwd=HERE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        issuer = json.loads(process.stdout.readline())["issuer"]
        yield OpenIdProvider(issuer)
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def providers(oidc_provider, settings):
    """The test provider configured as `test` (untrusted for linking) and `trusted`."""
    settings.SV_PUBLIC_URL = APP
    settings.SV_TRUSTED_ORIGINS = [APP, "http://app.example"]
    settings.SV_RATE_LIMITS = {**settings.SV_RATE_LIMITS, "sign_in": (1000, 10)}
    settings.SV_OAUTH_TIMEOUT = 2.0
    settings.SV_OAUTH_PROVIDERS = {
        "test": oidc_provider.settings(name="Test provider"),
        "trusted": oidc_provider.settings(trusted_for_linking=True),
    }
    return oidc_provider


@pytest.fixture
def browser():
    """The user's browser at the provider: a cookie jar that follows nothing by itself."""
    with requests.Session() as session:
        yield session


def provider_login(browser, url: str, login: str, *, allow: bool = True) -> str:
    """Go through the provider's login and consent pages; return the redirect back to the app."""
    response = browser.get(url, allow_redirects=False, timeout=5)
    for _ in range(10):
        if response.is_redirect:
            url = urljoin(url, response.headers["Location"])
            if url.startswith(APP):
                return url
            response = browser.get(url, allow_redirects=False, timeout=5)
            continue
        assert response.status_code == 200, response.text
        if 'id="login"' in response.text:
            response = browser.post(
                f"{url}/login",
                data={"login": login, "password": PASSWORD},
                allow_redirects=False,
                timeout=5,
            )
        else:
            response = browser.post(
                f"{url}/{'confirm' if allow else 'abort'}", allow_redirects=False, timeout=5
            )
    raise AssertionError("the provider never sent the browser back")


def app_path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


@pytest.fixture
def app():
    """The application's side of the browser (keeps the sign-in cookie between requests)."""
    return APIClient(REMOTE_ADDR="192.0.2.10")


def start(app, provider_id: str = "test", **body):
    response = app.post(f"/api/v1/auth/oauth/{provider_id}/authorize", body, format="json")
    assert response.status_code == 200, response.content
    return response.json()["url"]
