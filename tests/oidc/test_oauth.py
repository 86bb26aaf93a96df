"""Sign-in with an OpenID Provider, end to end: the app's API, the real provider's redirects."""

from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings
from prometheus_client import REGISTRY

from audit_app.models import AuditLog
from auth_app.models import Account, OAuthState, Session, User
from auth_app.ratelimit import lockout_record_failure
from auth_app.tests.test_mfa import at_step, enrol_totp, verify
from email_app.models import EmailSend
from platform_app.flows import user_onboard
from tests.support import bearer_client

from .conftest import APP, app_path, provider_login, start

pytestmark = pytest.mark.django_db

LOCAL_PASSWORD = "correct horse battery staple"


def sign_in(app, browser, login, provider_id="test", **body):
    """The whole browser round trip; returns the app's answer to the provider's redirect."""
    back = provider_login(browser, start(app, provider_id, **body), login)
    return app.get(app_path(back))


def sign_ins() -> dict:
    """Sign-ins and sign-ups as /metrics reports them."""
    value = REGISTRY.get_sample_value
    return {
        "success": value("sv_sign_ins_total", {"result": "success"}) or 0.0,
        "failure": value("sv_sign_ins_total", {"result": "failure"}) or 0.0,
        "sign_ups": value("sv_sign_ups_total") or 0.0,
    }


def query(response) -> dict:
    return {k: v[0] for k, v in parse_qs(urlsplit(response["Location"]).query).items()}


def test_first_sign_in_creates_a_verified_user_with_the_account_and_a_session(
    providers, app, browser
):
    login = providers.add_account(email="Grace@Example.com", name="Grace Hopper")

    response = sign_in(app, browser, login)

    assert response.status_code == 302
    assert response["Location"] == f"{APP}/"
    # A fresh CSRF token, as at a password sign-in.
    assert response.cookies["csrftoken"].value
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


def test_the_providers_list_shows_the_enabled_ones_without_secrets(providers, app, settings):
    settings.SV_OAUTH_PROVIDERS = {
        **settings.SV_OAUTH_PROVIDERS,
        "off": providers.settings(enabled=False),
    }
    response = app.get("/api/v1/auth/providers")
    assert response.status_code == 200
    assert [p["id"] for p in response.json()] == ["test", "trusted"]
    assert response.json()[0] == {"id": "test", "name": "Test provider", "type": "oidc"}
    assert providers.client["client_secret"] not in response.content.decode()
    assert app.post("/api/v1/auth/oauth/off/authorize").status_code == 404


def test_a_verified_local_user_is_linked_automatically_through_a_trusted_provider(
    providers, app, browser
):
    user = user_onboard(email="linda@example.com", password=LOCAL_PASSWORD)
    User.objects.filter(pk=user.pk).update(email_verified=True)
    login = providers.add_account(email="linda@example.com")

    response = sign_in(app, browser, login, provider_id="trusted")

    assert response["Location"] == f"{APP}/"
    assert Account.objects.get(provider_id="trusted").user_id == user.pk
    assert User.objects.count() == 1
    assert AuditLog.objects.filter(event_type="account.linked", user_id=user.pk).exists()


@pytest.mark.parametrize(
    ("provider_id", "local_verified"),
    [("test", True), ("trusted", False)],
    ids=["untrusted", "unverified-local"],
)
def test_an_existing_email_is_refused_unless_both_sides_vouch_for_it(
    providers, app, browser, provider_id, local_verified
):
    user = user_onboard(email="owner@example.com", password=LOCAL_PASSWORD)
    User.objects.filter(pk=user.pk).update(email_verified=local_verified)
    login = providers.add_account(email="owner@example.com")

    response = sign_in(app, browser, login, provider_id=provider_id)

    assert query(response) == {"error": "account_exists"}
    assert not Account.objects.exists()
    assert not Session.objects.exists()
    failed = AuditLog.objects.get(event_type="auth.sign_in_failed")
    assert failed.metadata["reason"] == "account_exists"
    assert failed.metadata["provider"] == provider_id


def test_an_unverified_provider_email_creates_links_and_verifies_nothing(providers, app, browser):
    user = user_onboard(email="victim@example.com", password=LOCAL_PASSWORD)
    login = providers.add_account(email="victim@example.com", email_verified=False)

    response = sign_in(app, browser, login, provider_id="trusted")

    assert query(response) == {"error": "email_unverified"}
    assert not Account.objects.exists()
    user.refresh_from_db()
    assert not user.email_verified
    stranger = providers.add_account(email="new@example.com", email_verified=False)
    assert query(sign_in(app, browser, stranger)) == {"error": "email_unverified"}
    assert User.objects.count() == 1


def test_a_banned_user_is_refused_and_gets_no_session(providers, app, browser):
    login = providers.add_account(email="banned@example.com")
    sign_in(app, browser, login)
    app.post("/api/v1/auth/sign-out")
    from django.utils import timezone

    User.objects.update(banned_until=timezone.now() + timezone.timedelta(days=1))

    response = sign_in(app, browser, login)

    assert query(response) == {"error": "account_disabled"}
    assert not Session.objects.exists()


def test_a_locked_out_user_cannot_sign_in_through_a_provider(providers, app, browser, settings):
    login = providers.add_account(email="locked@example.com")
    sign_in(app, browser, login)
    app.post("/api/v1/auth/sign-out")
    user = User.objects.get()
    # Wrong passwords from this address, counted as the password sign-in counts them: by user.
    for _ in range(settings.SV_LOCKOUT_THRESHOLD):
        lockout_record_failure(ip="192.0.2.10", email="LOCKED@example.com", user=user)

    assert query(sign_in(app, browser, login)) == {"error": "rate_limited"}
    assert not Session.objects.exists()


def test_a_provider_sign_in_clears_the_failures_and_is_counted_like_a_password_one(
    providers, app, browser, settings, django_capture_on_commit_callbacks
):
    login = providers.add_account(email="counted@example.com")
    before = sign_ins()
    with django_capture_on_commit_callbacks(execute=True):
        sign_in(app, browser, login)
    app.post("/api/v1/auth/sign-out")
    user = User.objects.get()
    for _ in range(settings.SV_LOCKOUT_THRESHOLD - 1):
        lockout_record_failure(ip="192.0.2.10", email=user.email, user=user)

    with django_capture_on_commit_callbacks(execute=True):
        assert query(sign_in(app, browser, login)) == {}

    # The earlier failures are forgotten: one more wrong password does not lock the user out.
    lockout_record_failure(ip="192.0.2.10", email=user.email, user=user)
    assert not AuditLog.objects.filter(event_type="auth.locked_out").exists()
    assert sign_ins() == {
        "success": before["success"] + 2,
        "failure": before["failure"],
        "sign_ups": before["sign_ups"] + 1,
    }


def test_link_and_unlink_from_a_signed_in_session(providers, app, browser):
    user_onboard(email="ada@example.com", password=LOCAL_PASSWORD)
    signed_in = app.post(
        "/api/v1/auth/sign-in",
        {"email": "ada@example.com", "password": LOCAL_PASSWORD},
        format="json",
    )
    assert signed_in.status_code == 200
    # The provider's email may differ: linking vouches by the signed-in session.
    login = providers.add_account(email="ada.other@example.com")

    link = app.post(
        "/api/v1/auth/oauth/test/link",
        {"callback_url": "http://app.example/settings"},
        format="json",
    )
    assert link.status_code == 200, link.content
    response = app.get(app_path(provider_login(browser, link.json()["url"], login)))

    assert response["Location"] == "http://app.example/settings?linked=test"
    accounts = app.get("/api/v1/auth/me").json()["accounts"]
    assert [(a["provider_id"], a["account_id"]) for a in accounts] == [("test", login)]

    unlink = app.delete(f"/api/v1/auth/accounts/{accounts[0]['id']}")
    assert unlink.status_code == 204
    assert not Account.objects.exists()
    assert AuditLog.objects.filter(event_type="account.unlinked").count() == 1


def test_linking_an_identity_of_another_user_moves_nothing(providers, app, browser):
    login = providers.add_account(email="first@example.com")
    sign_in(app, browser, login)
    owner = Account.objects.get().user_id
    app.post("/api/v1/auth/sign-out")
    user_onboard(email="second@example.com", password=LOCAL_PASSWORD)
    app.post(
        "/api/v1/auth/sign-in",
        {"email": "second@example.com", "password": LOCAL_PASSWORD},
        format="json",
    )

    link = app.post("/api/v1/auth/oauth/test/link", {}, format="json")
    response = app.get(app_path(provider_login(browser, link.json()["url"], login)))

    assert query(response) == {"error": "account_linked_elsewhere"}
    assert Account.objects.get().user_id == owner


def test_the_last_way_to_sign_in_cannot_be_unlinked(providers, app, browser):
    login = providers.add_account(email="only@example.com")
    sign_in(app, browser, login)
    account = Account.objects.get()

    response = app.delete(f"/api/v1/auth/accounts/{account.pk}")

    assert response.status_code == 400
    assert response.json()["code"] == "last_credential"
    assert Account.objects.filter(pk=account.pk).exists()
    assert app.delete("/api/v1/auth/accounts/no-such-id").status_code == 404


def test_the_code_mode_hands_a_one_time_code_exchanged_once_for_a_bearer_token(
    providers, app, browser
):
    login = providers.add_account(email="mobile@example.com")

    response = sign_in(app, browser, login, callback_url="http://app.example/done", mode="code")

    assert response["Location"].startswith("http://app.example/done?code=")
    assert settings.SV_SESSION_COOKIE_NAME not in response.cookies
    code = query(response)["code"]
    exchanged = app.post("/api/v1/auth/oauth/exchange", {"code": code}, format="json")
    assert exchanged.status_code == 200
    token = exchanged.json()["session"]["token"]
    me = app.get("/api/v1/auth/me", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert me.json()["email"] == "mobile@example.com"
    again = app.post("/api/v1/auth/oauth/exchange", {"code": code}, format="json")
    assert again.status_code == 400 and again.json()["code"] == "token_invalid"


def test_a_callback_url_outside_the_trusted_origins_is_refused(providers, app):
    response = app.post(
        "/api/v1/auth/oauth/test/authorize",
        {"callback_url": "https://evil.example/steal"},
        format="json",
    )
    assert response.status_code == 400
    assert "callback_url" in response.json()["errors"]
    assert not OAuthState.objects.exists()


def test_consent_denied_at_the_provider_comes_back_as_access_denied(providers, app, browser):
    login = providers.add_account(email="shy@example.com")
    url = start(app, callback_url="http://app.example/")
    back = provider_login(browser, url, login, allow=False)

    response = app.get(app_path(back))

    assert response["Location"] == "http://app.example/?error=access_denied"
    assert not User.objects.exists()


def replace_param(url: str, **params) -> str:
    from urllib.parse import parse_qsl, urlencode

    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(params)
    return parts._replace(query=urlencode(query)).geturl()


def test_a_tampered_state_is_refused(providers, app, browser):
    login = providers.add_account(email="state@example.com")
    back = provider_login(browser, start(app), login)

    response = app.get(app_path(replace_param(back, state="forged")))

    assert query(response) == {"error": "invalid_state"}
    assert not Session.objects.exists()


def test_a_state_started_in_another_browser_is_refused(providers, app, browser):
    login = providers.add_account(email="fixation@example.com")
    # The attacker starts a sign-in, then lures the victim's browser to the callback.
    back = provider_login(browser, start(app, callback_url="http://app.example/x"), login)
    victim = type(app)(REMOTE_ADDR="192.0.2.11")

    response = victim.get(app_path(back))

    assert query(response) == {"error": "invalid_state"}
    assert response["Location"].startswith("http://app.example/x")
    assert not Session.objects.exists()


def test_a_replayed_callback_or_code_is_refused(providers, app, browser):
    login = providers.add_account(email="replay@example.com")
    back = provider_login(browser, start(app), login)
    assert "error" not in app.get(app_path(back))["Location"]
    app.post("/api/v1/auth/sign-out")

    # The same callback again: the state is single use.
    assert query(app.get(app_path(back))) == {"error": "invalid_state"}
    # The old code with a fresh state: the provider refuses it (and the PKCE verifier differs).
    fresh = provider_login(browser, start(app), login)
    old_code = query_of(back)["code"]
    response = app.get(app_path(replace_param(fresh, code=old_code)))
    assert query(response) == {"error": "invalid_grant"}
    assert Session.objects.count() == 0


def query_of(url: str) -> dict:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_a_tampered_pkce_challenge_fails_the_code_exchange(providers, app, browser):
    login = providers.add_account(email="pkce@example.com")
    url = replace_param(start(app), code_challenge="A" * 43)

    response = app.get(app_path(provider_login(browser, url, login)))

    assert query(response) == {"error": "invalid_grant"}
    assert not User.objects.exists()


@pytest.mark.parametrize("mode", ["nonce", "expired", "audience", "issuer", "signature"])
def test_an_id_token_failing_its_checks_signs_nobody_in(providers, app, browser, mode):
    login = providers.add_account(email=f"{mode}@example.com")
    back = provider_login(browser, start(app), login)
    providers.tamper(mode)

    response = app.get(app_path(back))

    assert query(response) == {"error": "invalid_id_token"}
    assert not User.objects.exists()
    assert not Session.objects.exists()
    failed = AuditLog.objects.get(event_type="auth.sign_in_failed")
    assert failed.metadata["reason"] == "invalid_id_token"


def test_a_provider_refusing_the_client_credentials_signs_nobody_in(
    providers, app, browser, settings
):
    other = providers.register([f"{APP}/api/v1/auth/oauth/other/callback"])
    settings.SV_OAUTH_PROVIDERS = {
        **settings.SV_OAUTH_PROVIDERS,
        "other": providers.settings(client_id=other["client_id"], client_secret="wrong"),
    }
    login = providers.add_account(email="mixup@example.com")
    response = app.get(app_path(provider_login(browser, start(app, "other"), login)))
    assert query(response) == {"error": "invalid_client"}
    assert not User.objects.exists()


def test_a_provider_that_is_down_is_a_problem_response_not_a_500(providers, app, settings):
    import socket

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    settings.SV_OAUTH_PROVIDERS = {
        "down": providers.settings(issuer=f"http://127.0.0.1:{port}"),
    }

    response = app.post("/api/v1/auth/oauth/down/authorize", {}, format="json")

    assert response.status_code == 503
    assert response.json()["code"] == "provider_unavailable"
    assert not OAuthState.objects.exists()


def test_a_slow_provider_times_out_into_an_error_redirect(providers, app, browser, settings):
    login = providers.add_account(email="slow@example.com")
    back = provider_login(browser, start(app), login)
    settings.SV_OAUTH_TIMEOUT = 0.5
    providers.delay(1500)
    try:
        response = app.get(app_path(back))
    finally:
        providers.delay(0)

    assert query(response) == {"error": "provider_unavailable"}
    assert not Session.objects.exists()


def test_the_access_token_helper_refreshes_rotates_and_flags_a_revoked_grant(
    providers, app, browser
):
    import requests
    from django.utils import timezone

    from auth_app.accounts import account_access_token
    from auth_app.errors import ReconsentNeeded

    login = providers.add_account(email="tokens@example.com")
    sign_in(app, browser, login)
    account = Account.objects.get()
    user = account.user
    first_access, first_refresh = account.access_token, account.refresh_token

    # Still fresh: no call to the provider, the same token.
    assert account_access_token(user=user, provider_id="test") == first_access

    Account.objects.update(access_token_expires_at=timezone.now() - timezone.timedelta(minutes=1))
    refreshed = account_access_token(user=user, provider_id="test")
    account.refresh_from_db()
    assert refreshed != first_access and account.access_token == refreshed
    assert account.refresh_token and account.refresh_token != first_refresh  # rotated
    assert account.access_token_expires_at > timezone.now()

    # The provider revokes the grant: the next refresh is refused, the account needs consent.
    client = providers.client
    requests.post(
        f"{providers.issuer}/token/revocation",
        data={"token": account.refresh_token, "token_type_hint": "refresh_token"},
        auth=(client["client_id"], client["client_secret"]),
        timeout=5,
    ).raise_for_status()
    Account.objects.update(access_token_expires_at=timezone.now() - timezone.timedelta(minutes=1))
    with pytest.raises(ReconsentNeeded):
        account_access_token(user=user, provider_id="test")
    account.refresh_from_db()
    assert account.needs_reconsent
    assert app.get("/api/v1/auth/me").json()["accounts"][0]["needs_reconsent"] is True

    # Signing in with the provider again gives new consent and clears the flag.
    app.post("/api/v1/auth/sign-out")
    sign_in(app, browser, login)
    account.refresh_from_db()
    assert not account.needs_reconsent


@pytest.mark.django_db(transaction=True)
def test_two_workers_needing_a_fresh_token_refresh_it_once(providers, app, browser):
    import threading

    from django.db import connection
    from django.utils import timezone

    from auth_app.accounts import account_access_token

    login = providers.add_account(email="workers@example.com")
    sign_in(app, browser, login)
    user = Account.objects.get().user
    Account.objects.update(access_token_expires_at=timezone.now() - timezone.timedelta(minutes=1))
    results, errors = [], []

    def worker():
        try:
            results.append(account_access_token(user=user, provider_id="test"))
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    providers.delay(300)  # each refresh takes a while: both workers want one at once
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        providers.delay(0)

    # A rotated refresh token used twice would be refused (and the grant revoked):
    # both workers got the one new token.
    assert errors == []
    assert len(results) == 2 and results[0] == results[1]
    assert not Account.objects.get().needs_reconsent


def test_a_client_authenticating_with_a_private_key_jwt_signs_in(providers, app, browser, settings):
    from joserfc.jwk import RSAKey

    key = RSAKey.generate_key(2048, parameters={"kid": "sv-client-key"})
    client = providers.register(
        [f"{APP}/api/v1/auth/oauth/keyed/callback"],
        token_endpoint_auth_method="private_key_jwt",
        token_endpoint_auth_signing_alg="RS256",
        jwks={"keys": [key.as_dict(private=False)]},
    )
    settings.SV_OAUTH_PROVIDERS = {
        "keyed": providers.settings(
            client_id=client["client_id"],
            client_secret="",
            private_key=key.as_pem(private=True).decode(),
            private_key_id="sv-client-key",
        )
    }
    login = providers.add_account(email="keyed@example.com")

    response = sign_in(app, browser, login, provider_id="keyed")

    assert response["Location"] == f"{APP}/"
    assert Account.objects.get().provider_id == "keyed"


def test_linking_needs_a_signed_in_session_and_the_get_start_redirects(providers, app):
    assert app.post("/api/v1/auth/oauth/test/link", {}, format="json").status_code == 401
    assert app.post("/api/v1/auth/oauth/nope/authorize", {}, format="json").status_code == 404

    started = app.get("/api/v1/auth/oauth/test/authorize", {"callback_url": "http://app.example/"})
    assert started.status_code == 302
    assert started["Location"].startswith(f"{providers.issuer}/auth?")
    assert "code_challenge_method=S256" in started["Location"]
    assert started.cookies[settings.SV_OAUTH_COOKIE_NAME]["httponly"]
    unknown = app.get("/api/v1/auth/oauth/test/authorize", {"next": "/"})
    assert unknown.status_code == 400


def test_a_user_with_a_second_factor_finishes_a_provider_sign_in_with_it(providers, app, browser):
    # Issue 18: a provider sign-in does not skip the second factor. Whatever the mode,
    # the callback hands a one-time code (never a session), its exchange answers the
    # MFA step, and auth/mfa/verify opens the session with amr ["oauth", "otp"].
    login = providers.add_account(email="guarded@example.com")
    sign_in(app, browser, login)
    user = User.objects.get(email="guarded@example.com")
    totp, _recovery_codes = enrol_totp(bearer_client(user))
    sessions_before = Session.objects.filter(user=user).count()

    response = sign_in(app, browser, login)

    assert response.status_code == 302 and "error" not in response["Location"]
    assert settings.SV_SESSION_COOKIE_NAME not in response.cookies
    assert Session.objects.filter(user=user).count() == sessions_before
    code = query(response)["code"]
    step = app.post("/api/v1/auth/oauth/exchange", {"code": code}, format="json")
    assert step.status_code == 200
    assert step.json()["mfa_required"] is True and "session" not in step.json()
    assert Session.objects.filter(user=user).count() == sessions_before

    wrong = verify(step.json()["mfa_token"], "totp", "000000")
    assert wrong.status_code == 400
    verified = verify(step.json()["mfa_token"], "totp", at_step(totp, 1))
    assert verified.status_code == 200, verified.content
    assert Session.objects.filter(user=user).count() == sessions_before + 1
    session = Session.objects.filter(user=user).latest("created_at")
    assert session.amr == ["oauth", "otp"]
