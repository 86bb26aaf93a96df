"""better-auth's signIn.social, linkSocial and unlinkAccount at /api/auth against the real
OpenID Provider: sv_sdk's OAuth flow answers them in better-auth's shapes, a second factor is
still asked for, and the refused paths (unsafe callbackURL, unknown provider, the last way to
sign in) change nothing."""

from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from auth_app.models import Account, OAuthState, Session, User
from auth_app.tests.test_mfa import at_step, enrol_totp
from platform_app.better_auth.cookies import COOKIE_NAME, TWO_FACTOR_COOKIE_NAME
from platform_app.flows import user_onboard
from tests.support import bearer_client

from .conftest import APP, app_path, provider_login

pytestmark = pytest.mark.django_db

BASE = "/api/auth"


def social(app, path="sign-in/social", **body):
    return app.post(f"{BASE}/{path}", body, format="json", HTTP_ORIGIN=APP)


def round_trip(app, browser, login, path="sign-in/social", **body):
    """Start at /api/auth, go through the provider's pages, return the callback's answer."""
    started = social(app, path, **body)
    assert started.status_code == 200, started.content
    back = provider_login(browser, started.json()["url"], login)
    return app.get(app_path(back))


def test_sign_in_social_answers_the_url_and_the_callback_sets_better_auths_cookie(
    providers, app, browser
):
    login = providers.add_account(email="grace@example.com", name="Grace")

    started = social(app, provider="test", callbackURL="/dashboard")
    assert started.status_code == 200, started.content
    assert started.json()["redirect"] is True
    assert started["Location"] == started.json()["url"]
    assert social(app, provider="test", disableRedirect=True).json()["redirect"] is False

    back = provider_login(browser, started.json()["url"], login)
    response = app.get(app_path(back))

    assert response.status_code == 302
    assert response["Location"] == f"{APP}/dashboard"
    assert response[  # the same value for bearer clients that follow the redirect themselves
        "set-auth-token"
    ] == unquote(response.cookies[COOKIE_NAME].value)
    session = app.get(f"{BASE}/get-session").json()
    assert session["user"]["email"] == "grace@example.com"
    assert session["user"]["emailVerified"] is True
    assert Session.objects.get(user__email="grace@example.com").amr == ["oauth"]


def test_a_user_with_a_second_factor_gets_the_two_factor_step_not_a_session(
    providers, app, browser
):
    login = providers.add_account(email="guarded@example.com")
    round_trip(app, browser, login, provider="test")
    user = User.objects.get(email="guarded@example.com")
    totp, _codes = enrol_totp(bearer_client(user))
    app.cookies.clear()
    before = Session.objects.filter(user=user).count()

    response = round_trip(app, browser, login, provider="test", callbackURL="/home?tab=1")

    assert response.status_code == 302
    assert parse_qs(urlsplit(response["Location"]).query) == {
        "tab": ["1"],
        "twoFactorRedirect": ["true"],
    }
    assert COOKIE_NAME not in response.cookies
    assert response.cookies[TWO_FACTOR_COOKIE_NAME].value
    assert Session.objects.filter(user=user).count() == before
    assert app.get(f"{BASE}/get-session").json() is None

    verified = app.post(
        f"{BASE}/two-factor/verify-totp",
        {"code": at_step(totp, 1)},
        format="json",
        HTTP_ORIGIN=APP,
    )
    assert verified.status_code == 200, verified.content
    assert Session.objects.filter(user=user).count() == before + 1
    assert Session.objects.filter(user=user).latest("created_at").amr == ["oauth", "otp"]


@pytest.mark.parametrize(
    "field", ["callbackURL", "errorCallbackURL", "newUserCallbackURL"]
)  # fmt: skip
@pytest.mark.parametrize("url", ["https://evil.example/x", "//evil.example/x"])
def test_an_untrusted_callback_url_is_refused_before_anything_starts(providers, app, field, url):
    response = social(app, provider="test", **{field: url})

    assert response.status_code == 403, response.content
    assert response.json()["code"] == "INVALID_CALLBACK_URL"
    assert not OAuthState.objects.exists()


def test_an_unknown_provider_and_id_tokens_are_refused(providers, app):
    unknown = social(app, provider="nowhere")
    assert unknown.status_code == 404 and unknown.json()["code"] == "PROVIDER_NOT_FOUND"
    token = social(app, provider="test", idToken={"token": "eyJ..."})
    assert token.status_code == 404 and token.json()["code"] == "ID_TOKEN_NOT_SUPPORTED"
    assert not OAuthState.objects.exists()


def test_link_social_then_unlink_account(providers, app, browser):
    user = user_onboard(email="ada@example.com", password="correct horse battery staple")
    login = providers.add_account(email="ada-elsewhere@example.com")
    signed_in = bearer_client(user)

    started = signed_in.post(f"{BASE}/link-social", {"provider": "test", "callbackURL": "/me"},
                             format="json")  # fmt: skip
    assert started.status_code == 200, started.content
    # The browser that follows the URL carries the binding cookie the answer set.
    app.cookies.update(started.cookies)
    signed_in.cookies.clear()  # a bearer client keeps none
    back = provider_login(browser, started.json()["url"], login)
    response = app.get(app_path(back))

    assert response["Location"] == f"{APP}/me"
    accounts = signed_in.get(f"{BASE}/list-accounts").json()
    assert [a["providerId"] for a in accounts] == ["credential", "test"]
    account_id = accounts[1]["id"]

    unlinked = signed_in.post(f"{BASE}/unlink-account", {"accountId": account_id}, format="json")
    assert unlinked.json() == {"status": True}
    assert not Account.objects.filter(user=user).exists()
    again = signed_in.post(f"{BASE}/unlink-account", {"accountId": account_id}, format="json")
    assert again.status_code == 400 and again.json()["code"] == "ACCOUNT_NOT_FOUND"
    # The password is listed as an account but is not one: it cannot be unlinked.
    credential = signed_in.post(f"{BASE}/unlink-account", {"accountId": user.pk}, format="json")
    assert credential.status_code == 400 and credential.json()["code"] == "ACCOUNT_NOT_FOUND"


def test_the_last_way_to_sign_in_cannot_be_unlinked(providers, app, browser):
    login = providers.add_account(email="only-provider@example.com")
    round_trip(app, browser, login, provider="test")
    user = User.objects.get(email="only-provider@example.com")
    account = Account.objects.get(user=user)

    response = app.post(
        f"{BASE}/unlink-account", {"accountId": account.pk}, format="json", HTTP_ORIGIN=APP
    )

    assert response.status_code == 400, response.content
    assert response.json()["code"] == "FAILED_TO_UNLINK_LAST_ACCOUNT"
    assert Account.objects.filter(pk=account.pk).exists()
