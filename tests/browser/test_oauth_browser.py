"""Signing in with an OpenID Provider in a real browser, through the provider's own pages."""

import json

import pytest

from auth_app.models import Account, Session
from tests.oidc.conftest import PASSWORD, oidc_provider  # noqa: F401 (the session's provider)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_user_signs_in_through_the_providers_login_and_consent_pages(
    page,
    live_server,
    settings,
    oidc_provider,  # noqa: F811
):
    client = oidc_provider.register([f"{live_server.url}/api/v1/auth/oauth/test/callback"])
    settings.SV_PUBLIC_URL = live_server.url
    settings.SV_TRUSTED_ORIGINS = [live_server.url]
    settings.SV_OAUTH_PROVIDERS = {
        "test": oidc_provider.settings(
            client_id=client["client_id"], client_secret=client["client_secret"]
        )
    }
    login = oidc_provider.add_account(email="browser@example.com", name="Brow Ser")

    # A plain link starts the sign-in (GET redirects to the provider).
    back_to = f"{live_server.url}/api/v1/auth/session"
    page.goto(f"/api/v1/auth/oauth/test/authorize?callback_url={back_to}")
    page.fill("#login", login)
    page.fill("#password", PASSWORD)
    page.click("#sign-in")
    page.click("#allow")
    page.wait_for_url(back_to)

    session = json.loads(page.locator("body").inner_text())
    assert session["user"]["email"] == "browser@example.com"
    assert session["user"]["email_verified"] is True
    assert Account.objects.get().account_id == login
    assert Session.objects.count() == 1
