"""Issue 15, class 7 (remaining low findings): reset tokens, change-password failures,
forgot-password's equal work, and bad input that answered 500 instead of a 400/404 problem."""

import base64
import io
import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from audit_app.models import AuditLog
from auth_app.services import PASSWORD_RESET, verification_build, verification_create
from platform_app.flows import user_onboard

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


def assert_problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["code"] == code
    return body


def cursor(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@pytest.fixture
def superuser_client():
    root = user_onboard(email="root@example.com", password=PASSWORD, is_superuser=True)
    client = APIClient()
    client.force_authenticate(user=root)
    return client


@pytest.mark.parametrize(
    "raw",
    [
        b"p=zzz",  # the review's forged cursor: not a timestamp
        b"p=2026-01-01T00:00:00%2B00:00",  # a timestamp alone, no id to break ties
        b"p=",
        b"p=\x00",
        b"p=" + b"9" * 60,
        b"o=-1&p=zzz",
        b"r=1&p=zzz",
    ],
)
@pytest.mark.parametrize("path", ["/api/v1/audit-logs", "/api/v1/users", "/api/v1/roles"])
def test_class7_a_forged_list_cursor_is_a_400_problem(superuser_client, path, raw):
    response = superuser_client.get(path, {"cursor": cursor(raw)})

    # A 200 is fine for a position the list can use; otherwise a 400 problem, never a 5xx.
    if response.status_code != 200:
        assert response.status_code == 400, response.content
        assert response["Content-Type"] == "application/problem+json"


def test_class7_the_review_cursor_on_audit_logs_is_refused_as_invalid(superuser_client):
    response = superuser_client.get("/api/v1/audit-logs", {"cursor": cursor(b"p=zzz")})

    body = assert_problem(response, 400, "validation_error")
    assert body["errors"] == {"cursor": ["Invalid cursor."]}


@pytest.mark.parametrize(
    "path", ["/api/v1/auth/sign-in", "/api/v1/auth/sign-up", "/api/v1/auth/forgot-password"]
)
def test_class7_deeply_nested_json_is_a_400_problem_not_a_recursion_error(path):
    body = "[" * (64 * 1024 - 1)

    response = APIClient(REMOTE_ADDR="192.0.2.70").post(path, body, content_type="application/json")

    assert_problem(response, 400, "invalid_json")


def test_class7_deeply_nested_json_on_an_authenticated_endpoint_is_a_400(superuser_client):
    response = superuser_client.post(
        "/api/v1/roles", "{" + '"a":[' * 12000, content_type="application/json"
    )

    assert_problem(response, 400, "invalid_json")


@pytest.mark.parametrize("esp", ["resend", "mailgun", "amazon_ses", "sendgrid", "postmark"])
def test_class7_a_webhook_for_an_esp_that_is_not_configured_is_a_404_problem(settings, esp):
    settings.SV_EMAIL_WEBHOOK_PROVIDERS = []
    response = APIClient().post(
        f"/webhooks/anymail/{esp}/tracking/", "{}", content_type="application/json"
    )

    assert_problem(response, 404, "webhook_not_configured")


def test_class7_only_the_configured_esp_has_a_webhook(settings):
    settings.SV_EMAIL_WEBHOOK_PROVIDERS = ["postmark"]
    settings.ANYMAIL = {"WEBHOOK_SECRET": "hook:secret"}

    other = APIClient().post(
        "/webhooks/anymail/resend/tracking/", "{}", content_type="application/json"
    )
    inbound = APIClient().post(
        "/webhooks/anymail/postmark/inbound/", "{}", content_type="application/json"
    )
    unknown = APIClient().post(
        "/webhooks/anymail/no-such-esp/tracking/", "{}", content_type="application/json"
    )
    configured = APIClient().post(
        "/webhooks/anymail/postmark/tracking/", "{}", content_type="application/json"
    )

    for response in (other, inbound, unknown):
        assert_problem(response, 404, "webhook_not_configured")
    # The configured ESP's view answers (here: no credentials, so anymail refuses it).
    assert configured.status_code in (400, 403)


# Every password change (and reset) ends the user's other unused reset tokens


def _signed_in(user) -> APIClient:
    token = (
        APIClient(REMOTE_ADDR="192.0.2.80")
        .post("/api/v1/auth/sign-in", {"email": user.email, "password": PASSWORD}, format="json")
        .json()["session"]["token"]
    )
    client = APIClient(REMOTE_ADDR="192.0.2.81")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def _reset(token: str, new_password: str):
    return APIClient(REMOTE_ADDR="192.0.2.82").post(
        "/api/v1/auth/reset-password",
        {"token": token, "new_password": new_password},
        format="json",
    )


def test_class7_a_reset_token_issued_before_change_password_stops_working():
    user = user_onboard(email="carol@example.com", password=PASSWORD)
    _row, token = verification_create(user=user, purpose=PASSWORD_RESET, ttl=timedelta(hours=1))

    changed = _signed_in(user).post(
        "/api/v1/auth/change-password",
        {"current_password": PASSWORD, "new_password": "a fresh passphrase 1"},
        format="json",
    )

    assert changed.status_code == 204, changed.content
    assert_problem(_reset(token, "the attacker's passphrase"), 400, "token_invalid")
    user.refresh_from_db()
    assert user.check_password("a fresh passphrase 1")


def test_class7_a_password_reset_ends_every_other_unused_reset_token():
    user = user_onboard(email="dave@example.com", password=PASSWORD)
    # Two live tokens, as two racing forgot-password requests can leave behind.
    first, first_token = verification_build(
        user=user, purpose=PASSWORD_RESET, ttl=timedelta(hours=1)
    )
    second, second_token = verification_build(
        user=user, purpose=PASSWORD_RESET, ttl=timedelta(hours=1)
    )
    first.save()
    second.save()

    assert _reset(first_token, "a fresh passphrase 2").status_code == 200

    assert_problem(_reset(second_token, "the attacker's passphrase"), 400, "token_invalid")


# A wrong current_password is audited and counts towards the lockout


def test_class7_a_wrong_current_password_is_audited_and_locks_like_a_sign_in(settings):
    settings.SV_RATE_LIMITS = {**settings.SV_RATE_LIMITS, "change_password": (100, 10)}
    user = user_onboard(email="erin@example.com", password=PASSWORD)
    client = _signed_in(user)

    def change(current):
        return client.post(
            "/api/v1/auth/change-password",
            {"current_password": current, "new_password": "a fresh passphrase 3"},
            format="json",
        )

    for _ in range(settings.SV_LOCKOUT_THRESHOLD):
        assert_problem(change("guess"), 400, "invalid_password")

    failures = AuditLog.objects.filter(event_type="user.password_check_failed", user_id=user.pk)
    assert failures.count() == settings.SV_LOCKOUT_THRESHOLD
    assert {(f.ip_address, f.actor_id) for f in failures} == {("192.0.2.81", user.pk)}
    assert "guess" not in str(list(failures.values()))
    assert AuditLog.objects.filter(event_type="auth.locked_out", user_id=user.pk).exists()
    # Locked: even the right password is refused from that address, for change and sign-in.
    assert_problem(change(PASSWORD), 429, "rate_limited")
    signin = APIClient(REMOTE_ADDR="192.0.2.81").post(
        "/api/v1/auth/sign-in", {"email": user.email, "password": PASSWORD}, format="json"
    )
    assert_problem(signin, 429, "rate_limited")
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


# forgot-password does the same work before answering, known email or not


def test_class7_forgot_password_does_the_same_work_for_known_and_unknown_emails():
    user_onboard(email="frank@example.com", password=PASSWORD)

    def work(email: str, address: str) -> list[str]:
        with CaptureQueriesContext(connection) as queries:
            response = APIClient(REMOTE_ADDR=address).post(
                "/api/v1/auth/forgot-password", {"email": email}, format="json"
            )
        assert response.status_code == 202
        # The statements, with the values that differ (address, email, ids) taken out.
        return [re.sub(r"'[^']*'|\d+", "?", query["sql"]) for query in queries]

    work("warm-up@example.com", "192.0.2.90")
    known = work("frank@example.com", "192.0.2.91")
    unknown = work("nobody@example.com", "192.0.2.92")

    assert known == unknown
    assert not any('"auth"."users"' in sql for sql in known)
    assert not any('"auth"."verifications"' in sql or '"email"' in sql for sql in known)


def test_class7_the_changepassword_command_ends_reset_tokens_and_is_audited(monkeypatch):
    user = user_onboard(email="grace@example.com", password=PASSWORD)
    _row, token = verification_create(user=user, purpose=PASSWORD_RESET, ttl=timedelta(hours=1))
    monkeypatch.setattr("getpass.getpass", lambda prompt="": "a fresh passphrase 4")

    call_command("changepassword", "GRACE@\uff45xample.com", stdout=io.StringIO())

    user.refresh_from_db()
    assert user.check_password("a fresh passphrase 4")
    assert AuditLog.objects.filter(event_type="user.password_changed", user_id=user.pk).exists()
    assert_problem(_reset(token, "the attacker's passphrase"), 400, "token_invalid")


def test_class7_the_changepassword_command_refuses_an_unknown_user_and_weak_passwords(
    monkeypatch,
):
    user = user_onboard(email="heidi@example.com", password=PASSWORD)
    with pytest.raises(CommandError, match="No user with the email"):
        call_command("changepassword", "nobody@example.com", stdout=io.StringIO())

    monkeypatch.setattr("getpass.getpass", lambda prompt="": "123")
    with pytest.raises(CommandError, match="after 3 attempts"):
        call_command("changepassword", user.email, stdout=io.StringIO(), stderr=io.StringIO())
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
