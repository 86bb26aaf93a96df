"""The identity API: each endpoint's success and failure paths, against real PostgreSQL."""

import json
import re
import time
from datetime import timedelta

import pytest
from django.contrib.auth.hashers import make_password
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from audit_app.models import AuditLog
from auth_app import selectors
from auth_app.models import Account, RateLimit, Session, User, Verification
from auth_app.services import PASSWORD_RESET, session_create, verification_create
from email_app.models import EmailSend
from permissions_app.models import PermissionCache
from sv_sdk.db import prepared
from tests.support import assert_problem

from .conftest import PASSWORD, new_ip

pytestmark = pytest.mark.django_db

SIGN_IN = "/api/v1/auth/sign-in"


def bearer(token: str) -> APIClient:
    client = APIClient(REMOTE_ADDR=new_ip())
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def sign_in(client, email, password):
    return client.post(SIGN_IN, {"email": email, "password": password}, format="json")


# Sign-up


def test_sign_up_creates_an_onboarded_user_and_a_working_session(client):
    response = client.post(
        "/api/v1/auth/sign-up",
        {"email": "Grace@Example.com", "password": PASSWORD, "name": "Grace"},
        format="json",
    )

    assert response.status_code == 201
    body = response.json()
    assert body["user"]["email"] == "Grace@example.com"
    assert body["user"]["email_verified"] is False
    token = body["session"]["token"]
    assert len(token) >= 43  # 256 bits, URL-safe base64
    assert bearer(token).get("/api/v1/auth/session").status_code == 200
    cookie = response.cookies["sv_session"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    user = User.objects.get()
    assert EmailSend.objects.filter(user=user, template__key="verify-email").exists()
    # Only the hash of the token is stored.
    assert not Session.objects.filter(token_hash=token).exists()


def test_sign_up_with_a_taken_email_in_another_case_is_a_409(client, user):
    response = client.post(
        "/api/v1/auth/sign-up", {"email": "ADA@example.com", "password": PASSWORD}, format="json"
    )
    assert_problem(response, 409, "email_taken")
    assert User.objects.count() == 1


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"email": "not-an-email", "password": PASSWORD}, "email"),
        ({"email": "a@example.com", "password": "123"}, "password"),
        ({"email": "a@example.com", "password": "password"}, "password"),
        ({"email": "a@example.com", "password": "a@example.com"}, "password"),
        ({"email": "a@example.com"}, "password"),
        ({"email": "a@example.com", "password": PASSWORD, "is_superuser": True}, "is_superuser"),
    ],
)
def test_sign_up_rejects_bad_input_field_by_field(client, payload, field):
    response = client.post("/api/v1/auth/sign-up", payload, format="json")
    body = assert_problem(response, 400, "validation_error")
    assert field in body["errors"]
    assert not User.objects.exists()


def test_a_long_password_is_accepted_whole_without_truncation(client):
    long_password = "x1!" * 40  # 120 characters
    client.post(
        "/api/v1/auth/sign-up",
        {"email": "long@example.com", "password": long_password},
        format="json",
    )
    user = User.objects.get()
    assert user.check_password(long_password)
    assert not user.check_password(long_password[:72])


def test_malformed_json_wrong_content_type_and_oversized_bodies_are_problems():
    def post(body, content_type):
        return APIClient(REMOTE_ADDR=new_ip()).post(
            "/api/v1/auth/sign-up", body, content_type=content_type
        )

    assert_problem(post("{not json", "application/json"), 400, "invalid_json")
    assert_problem(post("email=a@b.c", "text/plain"), 415, "unsupported_media_type")
    huge = json.dumps({"email": "a@example.com", "password": "x" * 100_000})
    assert_problem(post(huge, "application/json"), 413, "payload_too_large")
    assert_problem(post("[1, 2]", "application/json"), 400, "validation_error")


def test_an_unknown_api_path_is_a_problem_not_an_html_page(client):
    assert_problem(client.get("/api/v1/nope"), 404, "not_found")


# Sign-in


def test_sign_in_returns_the_user_and_a_session_and_audits_it(client, user):
    response = sign_in(client, "ADA@example.com", PASSWORD)

    assert response.status_code == 200
    assert response.json()["user"]["id"] == user.pk
    event = AuditLog.objects.get(event_type="auth.sign_in")
    assert (
        event.user_id == user.pk and event.ip_address == response.wsgi_request.META["REMOTE_ADDR"]
    )
    user.refresh_from_db()
    assert user.last_login is not None


def test_unknown_email_and_wrong_password_get_the_same_answer(client, user):
    wrong = sign_in(client, "ada@example.com", "wrong password!")
    unknown = sign_in(APIClient(REMOTE_ADDR=new_ip()), "nobody@example.com", "wrong password!")

    assert_problem(wrong, 401, "invalid_credentials")
    assert wrong.status_code == unknown.status_code
    assert wrong.json() == unknown.json()
    reasons = sorted(
        e.metadata["reason"] for e in AuditLog.objects.filter(event_type="auth.sign_in_failed")
    )
    assert reasons == ["unknown_email", "wrong_password"]


def test_unknown_email_takes_as_long_as_a_wrong_password(settings, client):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.Argon2PasswordHasher"]
    settings.SV_RATE_LIMITS = {**settings.SV_RATE_LIMITS, "sign_in": (100, 10)}
    from platform_app.flows import user_onboard

    user_onboard(email="slow@example.com", password=PASSWORD)

    def timed(email):
        started = time.perf_counter()
        sign_in(client, email, "wrong password!")
        return time.perf_counter() - started

    wrong = sorted(timed("slow@example.com") for _ in range(3))[1]
    unknown = sorted(timed(f"nobody{i}@example.com") for i in range(3))[1]
    assert 0.5 < unknown / wrong < 2.0


def test_sign_in_is_rate_limited_per_ip_with_retry_after(client, user):
    for _ in range(3):
        assert sign_in(client, "ada@example.com", PASSWORD).status_code == 200
    response = sign_in(client, "ada@example.com", PASSWORD)

    assert_problem(response, 429, "rate_limited")
    assert 1 <= int(response["Retry-After"]) <= 10
    # Another address is not affected.
    assert sign_in(APIClient(REMOTE_ADDR=new_ip()), "ada@example.com", PASSWORD).status_code == 200


def test_repeated_failures_lock_the_account_from_that_address_only(settings, client, user):
    settings.SV_RATE_LIMITS = {**settings.SV_RATE_LIMITS, "sign_in": (100, 10)}
    for _ in range(settings.SV_LOCKOUT_THRESHOLD):
        assert sign_in(client, "ada@example.com", "wrong password!").status_code == 401

    locked = sign_in(client, "ada@example.com", PASSWORD)
    assert_problem(locked, 429, "rate_limited")
    assert int(locked["Retry-After"]) <= settings.SV_LOCKOUT_BASE_WAIT
    assert AuditLog.objects.filter(event_type="auth.locked_out", user_id=user.pk).count() == 1
    # The owner, elsewhere, is not locked out by someone else's failures.
    assert sign_in(APIClient(REMOTE_ADDR=new_ip()), "ada@example.com", PASSWORD).status_code == 200

    # Each further failure doubles the wait, but never beyond the cap.
    row = RateLimit.objects.get(key__startswith="lockout:")
    for _ in range(20):
        row.blocked_until = timezone.now() - timedelta(seconds=1)
        row.save()
        sign_in(client, "ada@example.com", "wrong password!")
        row.refresh_from_db()
    wait = (row.blocked_until - timezone.now()).total_seconds()
    assert settings.SV_LOCKOUT_MAX_WAIT - 5 < wait <= settings.SV_LOCKOUT_MAX_WAIT

    # Once the wait is over, the right password works and the count starts again.
    row.blocked_until = timezone.now() - timedelta(seconds=1)
    row.save()
    assert sign_in(client, "ada@example.com", PASSWORD).status_code == 200
    assert not RateLimit.objects.filter(key__startswith="lockout:").exists()


def test_a_lockout_on_an_unknown_email_looks_like_one_on_a_real_account(settings, client):
    settings.SV_RATE_LIMITS = {**settings.SV_RATE_LIMITS, "sign_in": (100, 10)}
    for _ in range(settings.SV_LOCKOUT_THRESHOLD):
        sign_in(client, "ghost@example.com", "wrong password!")
    assert_problem(sign_in(client, "ghost@example.com", "x"), 429, "rate_limited")


def test_sign_in_rehashes_a_password_stored_with_older_parameters(settings, client):
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.Argon2PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    ]
    from platform_app.flows import user_onboard

    user = user_onboard(email="old@example.com")
    User.objects.filter(pk=user.pk).update(password=make_password(PASSWORD, hasher="pbkdf2_sha256"))

    assert sign_in(client, "old@example.com", PASSWORD).status_code == 200
    user.refresh_from_db()
    assert user.password.startswith("argon2$argon2id$")


def test_sign_in_rehashes_a_password_stored_with_django_s_heavier_argon2_defaults(settings, client):
    from django.contrib.auth.hashers import Argon2PasswordHasher

    from platform_app.flows import user_onboard

    settings.PASSWORD_HASHERS = ["auth_app.hashers.Argon2idPasswordHasher"]
    user = user_onboard(email="heavy@example.com")
    # As stored before issue 20: 100 MiB, two passes, eight lanes.
    heavy = make_password(PASSWORD, hasher=Argon2PasswordHasher())
    User.objects.filter(pk=user.pk).update(password=heavy)

    assert sign_in(client, "heavy@example.com", "wrong password!").status_code == 401
    user.refresh_from_db()
    assert user.password == heavy  # a wrong password changes nothing

    assert sign_in(client, "heavy@example.com", PASSWORD).status_code == 200
    user.refresh_from_db()
    assert user.password.startswith("argon2$argon2id$v=19$m=47104,t=1,p=1$")
    assert (
        sign_in(APIClient(REMOTE_ADDR=new_ip()), "heavy@example.com", PASSWORD).status_code == 200
    )


def test_the_project_s_first_hasher_stores_argon2id_hashes_of_at_least_32_mib():
    from django.utils.module_loading import import_string

    from sv_sdk.settings import base

    hasher = import_string(base.PASSWORD_HASHERS[0])()
    decoded = hasher.decode(make_password(PASSWORD, hasher=hasher))
    assert decoded["variety"] == "argon2id"
    assert decoded["memory_cost"] >= 32 * 1024  # KiB: at least better-auth's scrypt


def test_a_deactivated_or_banned_user_cannot_sign_in_and_their_sessions_stop_working(
    client, user, signed_in
):
    authed, _token = signed_in
    User.objects.filter(pk=user.pk).update(is_active=False)
    assert_problem(authed.get("/api/v1/auth/session"), 401, "not_authenticated")
    assert_problem(sign_in(client, "ada@example.com", PASSWORD), 403, "account_disabled")

    User.objects.filter(pk=user.pk).update(
        is_active=True, banned_until=timezone.now() + timedelta(days=1)
    )
    assert_problem(authed.get("/api/v1/auth/session"), 401, "not_authenticated")


# Sessions


def test_the_session_endpoint_describes_the_session_without_its_token(signed_in, user):
    authed, token = signed_in
    body = authed.get("/api/v1/auth/session").json()
    assert body["user"]["id"] == user.pk
    assert body["session"]["current"] is True
    assert token not in json.dumps(body)


def test_requests_without_or_with_a_bad_token_are_401(client):
    assert_problem(client.get("/api/v1/auth/session"), 401, "not_authenticated")
    assert_problem(bearer("not-a-token").get("/api/v1/auth/session"), 401, "not_authenticated")
    assert_problem(bearer("").get("/api/v1/auth/session"), 401, "not_authenticated")


def test_authentication_costs_one_query(signed_in):
    authed, _token = signed_in
    with CaptureQueriesContext(connection) as queries:
        assert authed.get("/api/v1/auth/session").status_code == 200
    assert len(queries) == 1, [q["sql"] for q in queries]


def test_authentication_costs_one_query_even_on_a_fresh_database_connection(signed_in):
    # The first check on a connection prepares the statement in the same round trip.
    authed, _token = signed_in
    prepared._prepared.pop(connection.connection, None)
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
    for _ in range(2):
        with CaptureQueriesContext(connection) as queries:
            assert authed.get("/api/v1/auth/session").status_code == 200
        assert len(queries) == 1, [q["sql"] for q in queries]


def test_the_session_lookup_returns_the_session_its_user_and_their_permission_cache(user):
    _session, token = session_create(user=user)
    with CaptureQueriesContext(connection) as queries:
        session = selectors.session_get_by_token(token=token)
        assert session.user == user and session.user.email == "ada@example.com"
        assert session.user.permission_cache.user_id == user.pk
        assert session.data == {} and session.expires_at > timezone.now()
        assert session.user.has_perm("profile:read")
    assert len(queries) == 1
    assert selectors.session_get_by_token(token=token + "x") is None


def test_the_session_lookup_of_a_user_without_a_permission_cache_row_still_answers(user):
    _session, token = session_create(user=user)
    PermissionCache.objects.filter(user=user).delete()
    session = selectors.session_get_by_token(token=token)
    with pytest.raises(PermissionCache.DoesNotExist):
        session.user.permission_cache  # noqa: B018
    assert session.user.has_perm("profile:read")  # computed from the roles instead


def test_an_expired_session_is_refused_and_a_used_one_slides_once_a_day(settings, signed_in):
    authed, _token = signed_in
    session = Session.objects.get()
    # Used within the day: nothing is written.
    before = session.expires_at
    authed.get("/api/v1/auth/session")
    session.refresh_from_db()
    assert session.expires_at == before

    # A day later: extended, but never beyond the absolute cap.
    Session.objects.filter(pk=session.pk).update(
        last_seen_at=timezone.now() - timedelta(days=2),
        created_at=timezone.now() - timedelta(days=29, hours=23),
    )
    authed.get("/api/v1/auth/session")
    session.refresh_from_db()
    assert session.expires_at <= session.created_at + timedelta(days=30)
    assert session.last_seen_at > timezone.now() - timedelta(minutes=1)

    Session.objects.filter(pk=session.pk).update(expires_at=timezone.now())
    assert_problem(authed.get("/api/v1/auth/session"), 401, "not_authenticated")


def test_sign_out_ends_the_session_at_once(signed_in, user):
    authed, _token = signed_in
    assert authed.post("/api/v1/auth/sign-out").status_code == 204
    assert_problem(authed.get("/api/v1/auth/session"), 401, "not_authenticated")
    assert AuditLog.objects.filter(event_type="auth.sign_out", user_id=user.pk).exists()


def test_users_list_and_revoke_their_own_sessions(user, signed_in):
    authed, _token = signed_in
    other = bearer(
        sign_in(APIClient(REMOTE_ADDR=new_ip()), user.email, PASSWORD).json()["session"]["token"]
    )
    third = bearer(
        sign_in(APIClient(REMOTE_ADDR=new_ip()), user.email, PASSWORD).json()["session"]["token"]
    )

    sessions = authed.get("/api/v1/auth/sessions").json()["results"]
    assert len(sessions) == 3 and sum(s["current"] for s in sessions) == 1
    other_id = other.get("/api/v1/auth/session").json()["session"]["id"]

    assert authed.delete(f"/api/v1/auth/sessions/{other_id}").status_code == 204
    assert_problem(other.get("/api/v1/auth/session"), 401, "not_authenticated")
    assert AuditLog.objects.filter(event_type="session.revoked", target_id=other_id).exists()

    assert authed.post("/api/v1/auth/sessions/revoke-others").json() == {"revoked": 1}
    assert_problem(third.get("/api/v1/auth/session"), 401, "not_authenticated")
    assert authed.get("/api/v1/auth/session").status_code == 200


def test_nobody_revokes_someone_elses_session_through_their_own_endpoint(signed_in):
    from platform_app.flows import user_onboard

    stranger = user_onboard(email="mallory@example.com", password=PASSWORD)
    token = sign_in(APIClient(REMOTE_ADDR=new_ip()), stranger.email, PASSWORD).json()["session"]
    victim_session = Session.objects.get(user=stranger)
    authed, _ = signed_in
    assert_problem(authed.delete(f"/api/v1/auth/sessions/{victim_session.pk}"), 404, "not_found")
    assert bearer(token["token"]).get("/api/v1/auth/session").status_code == 200


def test_cookie_authentication_needs_the_csrf_token_for_unsafe_requests(user):
    browser = APIClient(enforce_csrf_checks=True, REMOTE_ADDR=new_ip())
    assert sign_in(browser, user.email, PASSWORD).status_code == 200
    assert browser.get("/api/v1/auth/session").status_code == 200  # cookie alone, safe method

    refused = browser.post("/api/v1/auth/sign-out")
    assert_problem(refused, 403, "permission_denied")

    browser.get("/admin/login/")  # any Django page sets the CSRF cookie
    csrf = browser.cookies["csrftoken"].value
    assert browser.post("/api/v1/auth/sign-out", HTTP_X_CSRFTOKEN=csrf).status_code == 204


# Profile


def test_me_shows_the_profile_and_linked_accounts_without_their_tokens(signed_in, user):
    Account.objects.create(
        user=user, provider_id="github", account_id="42", access_token="gho_secret"
    )
    authed, _ = signed_in
    body = authed.get("/api/v1/auth/me").json()
    assert body["email"] == "ada@example.com"
    assert body["accounts"][0]["provider_id"] == "github"
    assert "gho_secret" not in json.dumps(body)


def test_me_can_change_name_and_image_and_nothing_else(signed_in, user):
    authed, _ = signed_in
    response = authed.patch(
        "/api/v1/auth/me", {"name": "Ada L.", "image": "https://example.com/a.png"}, format="json"
    )
    assert response.status_code == 200 and response.json()["name"] == "Ada L."
    assert AuditLog.objects.get(event_type="user.updated").metadata == {"fields": ["image", "name"]}

    body = assert_problem(
        authed.patch("/api/v1/auth/me", {"email": "x@example.com"}, format="json"),
        400,
        "validation_error",
    )
    assert "email" in body["errors"]
    assert_problem(
        authed.patch("/api/v1/auth/me", {"image": "javascript:alert(1)"}, format="json"),
        400,
        "validation_error",
    )


# Email verification


def test_verify_email_accepts_a_token_once(client, user):
    _verification, token = verification_create(
        user=user, purpose="email-verification", ttl=timedelta(hours=1)
    )
    response = client.post("/api/v1/auth/verify-email", {"token": token}, format="json")

    assert response.status_code == 200 and response.json()["email_verified"] is True
    assert AuditLog.objects.filter(event_type="user.email_verified", user_id=user.pk).exists()
    assert EmailSend.objects.filter(user=user, template__key="welcome").exists()
    again = APIClient(REMOTE_ADDR=new_ip()).post(
        "/api/v1/auth/verify-email", {"token": token}, format="json"
    )
    assert_problem(again, 400, "token_invalid")


def test_verify_email_refuses_expired_unknown_and_other_purpose_tokens(client, user):
    _v, expired = verification_create(
        user=user, purpose="email-verification", ttl=timedelta(seconds=-1)
    )
    _v, reset = verification_create(user=user, purpose=PASSWORD_RESET, ttl=timedelta(hours=1))
    for token in (expired, reset, "made-up"):
        response = APIClient(REMOTE_ADDR=new_ip()).post(
            "/api/v1/auth/verify-email", {"token": token}, format="json"
        )
        assert_problem(response, 400, "token_invalid")
    user.refresh_from_db()
    assert not user.email_verified


@pytest.mark.django_db(transaction=True)
def test_send_verification_email_answers_202_whatever_the_email(client, user):
    from conftest import run_worker

    first = Verification.objects.get(user=user)
    known = client.post(
        "/api/v1/auth/send-verification-email", {"email": user.email}, format="json"
    )
    unknown = APIClient(REMOTE_ADDR=new_ip()).post(
        "/api/v1/auth/send-verification-email", {"email": "nobody@example.com"}, format="json"
    )
    run_worker()  # the requests deferred the work
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()
    assert EmailSend.objects.filter(user=user, template__key="verify-email").count() == 2
    # The new token replaces the old one.
    assert not Verification.objects.filter(pk=first.pk).exists()


def test_send_verification_email_is_rate_limited_per_address_and_ip(client, user):
    for _ in range(3):
        client.post("/api/v1/auth/send-verification-email", {"email": user.email}, format="json")
    response = client.post(
        "/api/v1/auth/send-verification-email", {"email": user.email.upper()}, format="json"
    )
    assert_problem(response, 429, "rate_limited")
    assert response["Retry-After"]
    # The address's owner, elsewhere, is not blocked by someone else's requests for it.
    own = APIClient(REMOTE_ADDR=new_ip()).post(
        "/api/v1/auth/send-verification-email", {"email": user.email}, format="json"
    )
    assert own.status_code == 202


# Password reset


def reset_token_from_outbox(settings) -> str:
    from conftest import run_worker

    run_worker()  # forgot-password's job, then the email's delivery
    send = EmailSend.objects.filter(template__key="reset-password").latest("created_at")
    body = mail.outbox[-1].body
    match = re.search(re.escape(settings.SV_PUBLIC_URL) + r"/reset-password\?token=([\w-]+)", body)
    assert match, body
    assert send.pk
    return match[1]


@pytest.mark.django_db(transaction=True)
def test_password_reset_end_to_end(settings, user):
    settings.SV_PUBLIC_URL = "https://accounts.example.org"
    settings.ALLOWED_HOSTS = ["*"]  # let a forged Host header through, to show it is not used
    old = sign_in(APIClient(REMOTE_ADDR=new_ip()), user.email, PASSWORD).json()["session"]["token"]
    forgot = APIClient(REMOTE_ADDR=new_ip()).post(
        "/api/v1/auth/forgot-password",
        {"email": "ADA@example.com"},
        format="json",
        HTTP_HOST="evil.example.net",
    )
    assert forgot.status_code == 202
    token = reset_token_from_outbox(settings)  # the link uses SV_PUBLIC_URL, not the Host

    new_password = "a brand new passphrase"
    response = APIClient(REMOTE_ADDR=new_ip()).post(
        "/api/v1/auth/reset-password", {"token": token, "new_password": new_password}, format="json"
    )
    assert response.status_code == 200
    assert_problem(bearer(old).get("/api/v1/auth/session"), 401, "not_authenticated")
    assert sign_in(APIClient(REMOTE_ADDR=new_ip()), user.email, new_password).status_code == 200
    assert EmailSend.objects.filter(template__key="password-changed", user=user).exists()
    events = set(AuditLog.objects.values_list("event_type", flat=True))
    assert {"user.password_reset_requested", "user.password_reset", "session.revoked"} <= events

    reused = APIClient(REMOTE_ADDR=new_ip()).post(
        "/api/v1/auth/reset-password",
        {"token": token, "new_password": "another passphrase!"},
        format="json",
    )
    assert_problem(reused, 400, "token_invalid")

    # Nothing secret reached the audit log.
    dump = json.dumps(list(AuditLog.objects.values()), default=str)
    for secret in (token, old, new_password, PASSWORD):
        assert secret not in dump


@pytest.mark.django_db(transaction=True)
def test_forgot_password_answers_the_same_for_unknown_emails(client, user):
    from conftest import run_worker

    known = client.post("/api/v1/auth/forgot-password", {"email": user.email}, format="json")
    unknown = APIClient(REMOTE_ADDR=new_ip()).post(
        "/api/v1/auth/forgot-password", {"email": "nobody@example.com"}, format="json"
    )
    run_worker()
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()
    assert EmailSend.objects.filter(template__key="reset-password").count() == 1


def test_reset_password_rejects_a_weak_new_password_and_keeps_the_token(client, user):
    _v, token = verification_create(user=user, purpose=PASSWORD_RESET, ttl=timedelta(hours=1))
    body = assert_problem(
        client.post(
            "/api/v1/auth/reset-password", {"token": token, "new_password": "123"}, format="json"
        ),
        400,
        "validation_error",
    )
    assert "password" in body["errors"]
    ok = APIClient(REMOTE_ADDR=new_ip()).post(
        "/api/v1/auth/reset-password",
        {"token": token, "new_password": "a good new passphrase"},
        format="json",
    )
    assert ok.status_code == 200


def test_a_new_reset_request_invalidates_the_previous_token(client, user):
    _v, first = verification_create(user=user, purpose=PASSWORD_RESET, ttl=timedelta(hours=1))
    _v, _second = verification_create(user=user, purpose=PASSWORD_RESET, ttl=timedelta(hours=1))
    response = client.post(
        "/api/v1/auth/reset-password",
        {"token": first, "new_password": "a good new passphrase"},
        format="json",
    )
    assert_problem(response, 400, "token_invalid")


# Password change


def test_change_password_needs_the_current_one(signed_in, user):
    authed, _ = signed_in
    body = assert_problem(
        authed.post(
            "/api/v1/auth/change-password",
            {"current_password": "nope", "new_password": "a good new passphrase"},
            format="json",
        ),
        400,
        "invalid_password",
    )
    assert "current_password" in body["errors"]


def test_change_password_can_end_the_other_sessions(signed_in, user):
    authed, _ = signed_in
    other = sign_in(APIClient(REMOTE_ADDR=new_ip()), user.email, PASSWORD).json()["session"][
        "token"
    ]
    response = authed.post(
        "/api/v1/auth/change-password",
        {
            "current_password": PASSWORD,
            "new_password": "a good new passphrase",
            "revoke_other_sessions": True,
        },
        format="json",
    )
    assert response.status_code == 204
    assert authed.get("/api/v1/auth/session").status_code == 200
    assert_problem(bearer(other).get("/api/v1/auth/session"), 401, "not_authenticated")
    assert AuditLog.objects.filter(event_type="user.password_changed").exists()
    assert EmailSend.objects.filter(template__key="password-changed").exists()


# Admin endpoints


def test_user_sessions_admin_endpoints_need_sessions_permissions(signed_in, user):
    from permissions_app.models import Role
    from permissions_app.services import role_grant
    from platform_app.flows import user_onboard

    admin = user_onboard(email="ops@example.com", password=PASSWORD)
    ops = bearer(
        sign_in(APIClient(REMOTE_ADDR=new_ip()), admin.email, PASSWORD).json()["session"]["token"]
    )
    assert_problem(ops.get(f"/api/v1/users/{user.pk}/sessions"), 403, "permission_denied")

    role_grant(user=admin, role=Role.objects.get(name="admin"))
    sessions = ops.get(f"/api/v1/users/{user.pk}/sessions").json()["results"]
    assert len(sessions) == 1
    assert ops.post(f"/api/v1/users/{user.pk}/sessions/revoke").json() == {"revoked": 1}
    authed, _ = signed_in
    assert_problem(authed.get("/api/v1/auth/session"), 401, "not_authenticated")
    assert_problem(ops.get("/api/v1/users/nope/sessions"), 404, "not_found")


def test_admin_logins_are_sessions_that_an_api_revocation_ends(client):
    from django.test import Client

    from platform_app.flows import user_onboard

    admin = user_onboard(email="root@example.com", password=PASSWORD, is_superuser=True)
    browser = Client()
    assert browser.login(email="root@example.com", password=PASSWORD)
    assert browser.get("/admin/").status_code == 200
    row = Session.objects.get(user=admin)
    assert row.token_hash != browser.cookies["sessionid"].value

    from auth_app.services import sessions_revoke_for_user

    sessions_revoke_for_user(user=admin, actor=None, reason="test")
    assert browser.get("/admin/").status_code == 302  # back to the login page


def test_a_nul_byte_in_a_path_id_is_bad_input_not_an_outage(signed_in):
    from permissions_app.models import Role
    from permissions_app.services import role_grant

    authed, _ = signed_in
    role_grant(user=User.objects.get(), role=Role.objects.get(name="admin"))
    assert_problem(authed.get("/api/v1/users/ab%00cd/sessions"), 400, "invalid_input")
    assert_problem(authed.get("/api/v1/email/sends/ab%00cd"), 400, "invalid_input")
