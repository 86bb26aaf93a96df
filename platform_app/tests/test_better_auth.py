"""The better-auth compatible API at /api/auth/: shapes, refused paths and sv_sdk's own rules.

The official client drives every call against a live server in tests/better_auth; these
tests cover what a client cannot easily provoke: forged cookies, foreign origins, unsafe
redirects, revoked sessions, expiry and rate limits.
"""

from datetime import timedelta
from urllib.parse import unquote

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from auth_app.models import Session, User, Verification
from auth_app.services import (
    EMAIL_VERIFICATION,
    PASSWORD_RESET,
    session_create,
    verification_create,
    verifications_prune,
)
from auth_app.tests.conftest import new_ip
from platform_app.better_auth.cookies import COOKIE_NAME, SECURE_COOKIE_NAME, token_sign
from platform_app.flows import user_onboard
from tests.support import PASSWORD

pytestmark = pytest.mark.django_db

FRONT = "http://front.example"
BASE = "/api/auth"


@pytest.fixture(autouse=True)
def _front_end(settings):
    settings.SV_TRUSTED_ORIGINS = [FRONT]
    settings.SV_BETTER_AUTH_SECRET = "better-auth-secret-for-these-tests-only-0123456789"
    # Some tests open one link several times; the rate limit has its own test.
    settings.SV_RATE_LIMITS = {
        **settings.SV_RATE_LIMITS,
        "verify_email": (100, 60),
        "reset_password": (100, 60),
    }


def cookie_client(token: str, origin: str | None = FRONT) -> APIClient:
    """A browser of the front end: the signed session cookie, and its Origin on every request."""
    client = APIClient(REMOTE_ADDR=new_ip(), **({"HTTP_ORIGIN": origin} if origin else {}))
    client.cookies[COOKIE_NAME] = token_sign(token)
    return client


def bearer_client(value: str) -> APIClient:
    client = APIClient(REMOTE_ADDR=new_ip())
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {value}")
    return client


def error(response, status: int, code: str) -> str:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code
    return body["message"]


# Sessions: the cookie and the bearer token


def test_sign_in_sets_a_signed_cookie_and_hands_the_same_value_to_bearer_clients(client, user):
    response = client.post(
        f"{BASE}/sign-in/email",
        {"email": "ada@example.com", "password": PASSWORD},
        format="json",
        HTTP_ORIGIN=FRONT,
    )

    assert response.status_code == 200, response.content
    body = response.json()
    token = body["token"]
    cookie = response.cookies[COOKIE_NAME]
    assert unquote(cookie.value) == token_sign(token) == response["set-auth-token"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/"
    assert cookie["max-age"] == 7 * 24 * 60 * 60
    assert "set-auth-token" in response["Access-Control-Expose-Headers"]
    assert body["user"]["emailVerified"] is False
    assert body["user"]["createdAt"].endswith("Z") and len(body["user"]["createdAt"]) == 24
    # Either form of the token works as a bearer token.
    for value in (token, response["set-auth-token"]):
        session = bearer_client(value).get(f"{BASE}/get-session").json()
        assert session["user"]["email"] == "ada@example.com"


def test_the_cookie_is_secure_and_prefixed_under_https(client, user):
    response = client.post(
        f"{BASE}/sign-in/email",
        {"email": "ada@example.com", "password": PASSWORD},
        format="json",
        secure=True,
        HTTP_ORIGIN=FRONT,
    )

    cookie = response.cookies[SECURE_COOKIE_NAME]
    assert cookie["secure"]
    assert COOKIE_NAME not in response.cookies


def test_a_cookie_signed_with_another_secret_is_nobody(user):
    _session, token = session_create(user=user)
    forged = cookie_client(token)
    forged.cookies[COOKIE_NAME] = f"{token}.{'A' * 43}="

    assert forged.get(f"{BASE}/get-session").json() is None
    error(forged.get(f"{BASE}/list-sessions"), 401, "UNAUTHORIZED")
    # The raw token in the cookie, unsigned, is not accepted either.
    forged.cookies[COOKIE_NAME] = token
    error(forged.get(f"{BASE}/list-sessions"), 401, "UNAUTHORIZED")


def test_a_signed_bearer_token_with_a_bad_signature_is_refused(user):
    _session, token = session_create(user=user)

    error(bearer_client(f"{token}.bad").get(f"{BASE}/list-sessions"), 401, "UNAUTHORIZED")


def test_a_revoked_session_is_signed_out_everywhere(user):
    session, token = session_create(user=user)
    Session.objects.filter(pk=session.pk).delete()

    assert cookie_client(token).get(f"{BASE}/get-session").json() is None
    error(bearer_client(token).get(f"{BASE}/list-sessions"), 401, "UNAUTHORIZED")


def test_get_session_answers_null_when_signed_out(client):
    response = client.get(f"{BASE}/get-session")

    assert response.status_code == 200
    assert response.content == b"null"


def test_list_sessions_shows_handles_not_tokens_and_revoke_session_takes_a_handle(user):
    _current, token = session_create(user=user)
    other, other_token = session_create(user=user)
    client = bearer_client(token)

    listed = client.get(f"{BASE}/list-sessions").json()
    assert {entry["token"] for entry in listed} == set(Session.objects.values_list("pk", flat=True))
    assert token not in str(listed) and other_token not in str(listed)

    response = client.post(f"{BASE}/revoke-session", {"token": other.pk}, format="json")
    assert response.json() == {"status": True}
    assert not Session.objects.filter(pk=other.pk).exists()
    assert len(client.get(f"{BASE}/list-sessions").json()) == 1


def test_revoke_session_cannot_touch_another_users_session(user):
    _session, token = session_create(user=user)
    someone = user_onboard(email="bob@example.com", password=PASSWORD)
    theirs, _ = session_create(user=someone)

    bearer_client(token).post(f"{BASE}/revoke-session", {"token": theirs.pk}, format="json")

    assert Session.objects.filter(pk=theirs.pk).exists()


# The Origin check (no CSRF token in this protocol)


@pytest.mark.parametrize(
    ("origin", "code"),
    [(None, "MISSING_OR_NULL_ORIGIN"), ("null", "MISSING_OR_NULL_ORIGIN"),
     ("http://evil.example", "INVALID_ORIGIN")],
)  # fmt: skip
def test_a_cookie_bearing_write_from_an_untrusted_origin_is_refused(user, origin, code):
    _session, token = session_create(user=user)

    response = cookie_client(token, origin=origin).post(
        f"{BASE}/update-user", {"name": "Mallory"}, format="json"
    )

    error(response, 403, code)
    user.refresh_from_db()
    assert user.name == "Ada"


def test_a_trusted_referer_stands_in_for_a_missing_origin(user):
    _session, token = session_create(user=user)
    client = cookie_client(token, origin=None)

    response = client.post(
        f"{BASE}/update-user", {"name": "Ada L."}, format="json", HTTP_REFERER=f"{FRONT}/settings"
    )

    assert response.status_code == 200, response.content
    user.refresh_from_db()
    assert user.name == "Ada L."


def test_a_bearer_only_write_needs_no_origin(user):
    _session, token = session_create(user=user)

    response = bearer_client(token).post(f"{BASE}/update-user", {"name": "Ada B."}, format="json")

    assert response.status_code == 200


def test_a_sign_in_riding_on_a_cookie_from_another_site_is_refused(client, user):
    # Login CSRF: any cookie makes the Origin check apply, even on public endpoints.
    client.cookies["other"] = "1"

    response = client.post(
        f"{BASE}/sign-in/email",
        {"email": "ada@example.com", "password": PASSWORD},
        format="json",
        HTTP_ORIGIN="http://evil.example",
    )

    error(response, 403, "INVALID_ORIGIN")
    assert not Session.objects.filter(user=user).exists()


# Redirect targets


@pytest.mark.parametrize(
    "url", ["https://evil.example/x", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"]
)
def test_an_untrusted_callback_url_is_refused_before_anything_happens(client, user, url):
    response = client.post(
        f"{BASE}/sign-in/email",
        {"email": "ada@example.com", "password": PASSWORD, "callbackURL": url},
        format="json",
    )

    error(response, 403, "INVALID_CALLBACK_URL")
    assert not Session.objects.filter(user=user).exists()


def test_an_untrusted_redirect_to_is_refused(client, user):
    response = client.post(
        f"{BASE}/request-password-reset",
        {"email": "ada@example.com", "redirectTo": "https://evil.example/reset"},
        format="json",
    )

    error(response, 403, "INVALID_REDIRECT_URL")


@pytest.mark.parametrize("url", ["/welcome", f"{FRONT}/welcome"])
def test_relative_and_trusted_callback_urls_are_followed(client, user, url):
    response = client.post(
        f"{BASE}/sign-in/email",
        {"email": "ada@example.com", "password": PASSWORD, "callbackURL": url},
        format="json",
    )

    assert response.status_code == 200
    assert response.json()["redirect"] is True and response.json()["url"] == url


# Errors as better-auth writes them


def test_sign_up_with_a_taken_email_is_422_in_better_auths_words(client, user):
    response = client.post(
        f"{BASE}/sign-up/email",
        {"email": "ADA@example.com", "password": PASSWORD, "name": "Ada"},
        format="json",
    )

    assert error(response, 422, "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL")


def test_a_wrong_password_and_an_unknown_email_look_the_same(client, user):
    wrong = client.post(
        f"{BASE}/sign-in/email", {"email": "ada@example.com", "password": "x" * 12}, format="json"
    )
    unknown = client.post(
        f"{BASE}/sign-in/email", {"email": "who@example.com", "password": "x" * 12}, format="json"
    )

    assert error(wrong, 401, "INVALID_EMAIL_OR_PASSWORD") == error(
        unknown, 401, "INVALID_EMAIL_OR_PASSWORD"
    )


def test_the_rate_limit_is_429_with_x_retry_after(client, settings):
    settings.SV_RATE_LIMITS = {**settings.SV_RATE_LIMITS, "sign_in": (1, 60)}
    body = {"email": "who@example.com", "password": "x" * 12}
    client.post(f"{BASE}/sign-in/email", body, format="json")

    response = client.post(f"{BASE}/sign-in/email", body, format="json")

    error(response, 429, "TOO_MANY_REQUESTS")
    assert int(response["X-Retry-After"]) > 0


def test_a_front_end_on_another_origin_can_read_how_long_to_wait(client, settings):
    settings.SV_RATE_LIMITS = {**settings.SV_RATE_LIMITS, "sign_in": (1, 60)}
    body = {"email": "who@example.com", "password": "x" * 12}
    client.post(f"{BASE}/sign-in/email", body, format="json", HTTP_ORIGIN=FRONT)

    response = client.post(f"{BASE}/sign-in/email", body, format="json", HTTP_ORIGIN=FRONT)

    assert response.status_code == 429
    assert "X-Retry-After" in response["Access-Control-Expose-Headers"]


def test_the_sign_in_lockout_applies_unchanged(client, user, settings):
    settings.SV_LOCKOUT_THRESHOLD = 2
    for _ in range(2):
        client.post(
            f"{BASE}/sign-in/email", {"email": user.email, "password": "x" * 12}, format="json"
        )

    response = client.post(
        f"{BASE}/sign-in/email", {"email": user.email, "password": PASSWORD}, format="json"
    )

    assert response.status_code == 429


def test_an_invalid_body_names_the_field(client):
    response = client.post(
        f"{BASE}/sign-up/email", {"email": "not an address", "password": PASSWORD}, format="json"
    )

    assert error(response, 400, "VALIDATION_ERROR").startswith("[body.email]")


def test_update_user_refuses_an_email(user):
    _session, token = session_create(user=user)

    response = bearer_client(token).post(
        f"{BASE}/update-user", {"email": "new@example.com"}, format="json"
    )

    error(response, 400, "EMAIL_CAN_NOT_BE_UPDATED")


# Tokens: single use and hashed, as in /api/v1


def _issue(user: User, purpose: str) -> str:
    _verification, token = verification_create(user=user, purpose=purpose, ttl=timedelta(hours=1))
    return token


def test_verify_email_by_get_is_idempotent_until_the_token_expires(client, user):
    token = _issue(user, EMAIL_VERIFICATION)

    # A mail scanner opens the link first; the user's own click still succeeds.
    for _ in range(2):
        response = client.get(f"{BASE}/verify-email", {"token": token})
        assert response.json() == {"status": True, "user": None}
    user.refresh_from_db()
    assert user.email_verified
    verifications_prune()
    assert client.get(f"{BASE}/verify-email", {"token": token}).status_code == 200

    Verification.objects.update(expires_at=timezone.now())
    error(client.get(f"{BASE}/verify-email", {"token": token}), 401, "INVALID_TOKEN")


def test_a_used_verification_token_does_not_verify_a_changed_address(client, user):
    token = _issue(user, EMAIL_VERIFICATION)
    client.get(f"{BASE}/verify-email", {"token": token})
    user.email_verified = False
    user.save(update_fields=["email_verified"])

    error(client.get(f"{BASE}/verify-email", {"token": token}), 401, "INVALID_TOKEN")


def test_verify_email_redirects_to_the_callback_with_the_error(client, user):
    response = client.get(f"{BASE}/verify-email", {"token": "nope", "callbackURL": "/verified"})

    assert response.status_code == 302
    assert response["Location"] == "/verified?error=INVALID_TOKEN"


def test_the_reset_link_redirect_only_looks_and_reset_password_uses_the_token_once(client, user):
    token = _issue(user, PASSWORD_RESET)
    link = f"{BASE}/reset-password/{token}"

    for _ in range(2):  # a prefetch does not spend it
        response = client.get(link, {"callbackURL": f"{FRONT}/reset"})
        assert response.status_code == 302
        assert response["Location"] == f"{FRONT}/reset?token={token}"

    body = {"token": token, "newPassword": "a brand new passphrase"}
    assert client.post(f"{BASE}/reset-password", body, format="json").json() == {"status": True}
    error(client.post(f"{BASE}/reset-password", body, format="json"), 400, "INVALID_TOKEN")
    response = client.get(link, {"callbackURL": "/reset"})
    assert response["Location"] == "/reset?error=INVALID_TOKEN"
    user.refresh_from_db()
    assert user.check_password("a brand new passphrase")


def test_the_reset_link_redirect_refuses_an_untrusted_callback(client, user):
    token = _issue(user, PASSWORD_RESET)

    response = client.get(
        f"{BASE}/reset-password/{token}", {"callbackURL": "https://evil.example/r"}
    )

    error(response, 403, "INVALID_CALLBACK_URL")


# The account


def test_delete_user_needs_the_password_or_a_recent_sign_in(user, settings):
    session, token = session_create(user=user)
    Session.objects.filter(pk=session.pk).update(
        authenticated_at=timezone.now() - timedelta(seconds=settings.SV_MFA_REAUTH_WINDOW + 60)
    )
    client = bearer_client(token)

    error(client.post(f"{BASE}/delete-user", {}, format="json"), 403, "SESSION_NOT_FRESH")
    wrong = client.post(f"{BASE}/delete-user", {"password": "x" * 12}, format="json")
    error(wrong, 400, "INVALID_PASSWORD")
    assert User.objects.filter(pk=user.pk).exists()

    response = client.post(f"{BASE}/delete-user", {"password": PASSWORD}, format="json")
    assert response.json() == {"success": True, "message": "User deleted"}
    assert not User.objects.filter(pk=user.pk).exists()


def test_list_accounts_shows_the_password_as_a_credential_account(user):
    _session, token = session_create(user=user)

    accounts = bearer_client(token).get(f"{BASE}/list-accounts").json()

    assert [a["providerId"] for a in accounts] == ["credential"]
    assert accounts[0]["userId"] == user.pk


def test_change_email_to_a_taken_address_is_refused(user):
    user_onboard(email="bob@example.com", password=PASSWORD)
    _session, token = session_create(user=user)

    response = bearer_client(token).post(
        f"{BASE}/change-email", {"newEmail": "Bob@example.com"}, format="json"
    )

    error(response, 422, "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL")
    user.refresh_from_db()
    assert user.email == "ada@example.com"


# CORS with credentials, for both APIs


@pytest.mark.parametrize("path", [f"{BASE}/get-session", "/api/v1/auth/session"])
def test_a_trusted_front_end_may_call_with_credentials(client, path):
    preflight = client.options(
        path,
        HTTP_ORIGIN=FRONT,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type, authorization",
    )

    assert preflight["Access-Control-Allow-Origin"] == FRONT
    assert preflight["Access-Control-Allow-Credentials"] == "true"
    assert "authorization" in preflight["Access-Control-Allow-Headers"]
    assert "set-auth-token" in client.get(path, HTTP_ORIGIN=FRONT)["Access-Control-Expose-Headers"]


def test_another_origin_gets_no_cors_headers(client):
    response = client.get(f"{BASE}/get-session", HTTP_ORIGIN="http://evil.example")

    assert "Access-Control-Allow-Origin" not in response


def test_cors_stays_off_outside_the_apis(client):
    response = client.get("/admin/login/", HTTP_ORIGIN=FRONT)

    assert "Access-Control-Allow-Origin" not in response
