"""Sign-in with an OpenID Provider, end to end: the app's API, the real provider's redirects."""

from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings

from audit_app.models import AuditLog
from auth_app.models import Account, OAuthState, Session, User
from email_app.models import EmailSend
from platform_app.flows import user_onboard

from .conftest import APP, app_path, provider_login, start

pytestmark = pytest.mark.django_db

LOCAL_PASSWORD = "correct horse battery staple"


def sign_in(app, browser, login, provider_id="test", **body):
    """The whole browser round trip; returns the app's answer to the provider's redirect."""
    back = provider_login(browser, start(app, provider_id, **body), login)
    return app.get(app_path(back))


def query(response) -> dict:
    return {k: v[0] for k, v in parse_qs(urlsplit(response["Location"]).query).items()}


def test_first_sign_in_creates_a_verified_user_with_the_account_and_a_session(
    providers, app, browser
):
    login = providers.add_account(email="Grace@Example.com", name="Grace Hopper")

    response = sign_in(app, browser, login)

    assert response.status_code == 302
    assert response["Location"] == f"{APP}/"
    user = User.objects.with_email("grace@example.com").get()
    assert user.email_verified and user.name == "Grace Hopper"
    assert not user.has_usable_password()
    account = Account.objects.get(user=user)
    assert (account.provider_id, account.account_id) == ("test", login)
    assert account.access_token and account.refresh_token and account.id_token
    assert not EmailSend.objects.filter(user=user).exists()  # no verification email
    assert user.user_roles.filter(role__name="user").exists()
    # The session cookie signs the browser in.
    me = app.get("/api/v1/auth/me")
    assert me.status_code == 200
    assert me.json()["accounts"][0]["provider_id"] == "test"
    assert "access_token" not in me.json()["accounts"][0]
    event = AuditLog.objects.get(event_type="auth.sign_in", user_id=user.pk)
    assert event.metadata == {"method": "oauth", "provider": "test"}
    assert AuditLog.objects.filter(event_type="account.linked", user_id=user.pk).exists()
    assert not OAuthState.objects.exists()


def test_returning_sign_in_signs_the_same_user_in(providers, app, browser):
    login = providers.add_account(email="returning@example.com")
    sign_in(app, browser, login)
    app.post("/api/v1/auth/sign-out")

    response = sign_in(app, browser, login)

    assert response.status_code == 302 and "error" not in response["Location"]
    assert User.objects.filter(email="returning@example.com").count() == 1
    assert Account.objects.count() == 1
    assert Session.objects.count() == 1
    assert AuditLog.objects.filter(event_type="auth.sign_in").count() == 2
