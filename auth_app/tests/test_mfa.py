"""Second factors over HTTP: TOTP and recovery codes, with pyotp making codes on our side."""

from datetime import timedelta

import pyotp
import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from audit_app.models import AuditLog
from auth_app import mfa
from auth_app.models import RecoveryCode, Session, TwoFactor, Verification
from auth_app.tests.factories import UserFactory
from permissions_app.services import role_grant
from permissions_app.tests.factories import RoleFactory
from tests.support import PASSWORD, assert_problem

pytestmark = pytest.mark.django_db

_addresses = iter(range(1, 10_000))


def new_client() -> APIClient:
    n = next(_addresses)
    return APIClient(REMOTE_ADDR=f"10.9.{n // 256 % 256}.{n % 256}")


def sign_in(client, email, password=PASSWORD):
    return client.post(
        "/api/v1/auth/sign-in", {"email": email, "password": password}, format="json"
    )


def bearer(token: str) -> APIClient:
    client = new_client()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.fixture
def ada():
    return UserFactory(email="ada@example.com", password=PASSWORD)


def signed_in(user) -> APIClient:
    response = sign_in(new_client(), user.email)
    assert response.status_code == 200, response.content
    return bearer(response.json()["session"]["token"])


def enrol_totp(client) -> tuple[pyotp.TOTP, list[str]]:
    """Enrol an authenticator app through the API; return it and the recovery codes."""
    started = client.post("/api/v1/auth/mfa/totp")
    assert started.status_code == 200, started.content
    body = started.json()
    assert body["otpauth_uri"].startswith("otpauth://totp/")
    assert body["qr_svg"].startswith("<svg")
    totp = pyotp.TOTP(body["secret"])
    confirmed = client.post("/api/v1/auth/mfa/totp/confirm", {"code": totp.now()}, format="json")
    assert confirmed.status_code == 200, confirmed.content
    return totp, confirmed.json()["recovery_codes"]


def at_step(totp: pyotp.TOTP, offset: int) -> str:
    """The code of the step `offset` steps away from now."""
    now = int(mfa.mfa_now().timestamp()) // 30
    return totp.generate_otp(now + offset)


def verify(token: str, method: str, code: str, client=None):
    return (client or new_client()).post(
        "/api/v1/auth/mfa/verify",
        {"mfa_token": token, "method": method, "code": code},
        format="json",
    )


def second_step(user) -> dict:
    response = sign_in(new_client(), user.email)
    assert response.status_code == 200
    body = response.json()
    assert body["mfa_required"] is True and "session" not in body
    return body


def test_enrolment_is_inert_until_a_first_code_confirms_it(ada):
    client = signed_in(ada)
    started = client.post("/api/v1/auth/mfa/totp").json()
    # Not confirmed: signing in still asks for nothing more.
    assert "session" in sign_in(new_client(), ada.email).json()
    wrong = client.post("/api/v1/auth/mfa/totp/confirm", {"code": "000000"}, format="json")
    assert_problem(wrong, 400, "invalid_code")
    code = pyotp.TOTP(started["secret"]).now()
    confirmed = client.post("/api/v1/auth/mfa/totp/confirm", {"code": code}, format="json")
    assert confirmed.status_code == 200
    assert len(set(confirmed.json()["recovery_codes"])) == 10
    status = client.get("/api/v1/auth/mfa").json()
    assert status["totp_enabled"] and status["recovery_codes_left"] == 10
    assert AuditLog.objects.filter(event_type="mfa.enrolled", user_id=ada.pk).exists()
    # Secrets at rest: the column holds ciphertext, never the base32 secret.
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT secret FROM {TwoFactor._meta.db_table}")  # noqa: S608
        (stored,) = cursor.fetchone()
    assert started["secret"] not in stored
    # Recovery codes at rest: hashes only.
    hashes = set(RecoveryCode.objects.values_list("code_hash", flat=True))
    assert not hashes & set(confirmed.json()["recovery_codes"])


def test_sign_in_with_totp_asks_for_the_code_and_then_opens_a_session(ada):
    totp, _codes = enrol_totp(signed_in(ada))
    before = Session.objects.count()
    step = second_step(ada)
    assert step["methods"] == ["totp", "recovery_code"]
    assert Session.objects.count() == before  # no session from the password alone
    response = verify(step["mfa_token"], "totp", at_step(totp, 1))
    assert response.status_code == 200, response.content
    session = Session.objects.get(user=ada, amr__contains=["otp"])
    assert session.amr == ["otp", "pwd"]
    current = bearer(response.json()["session"]["token"]).get("/api/v1/auth/session")
    assert current.json()["session"]["amr"] == ["otp", "pwd"]


def test_the_mfa_endpoints_are_in_the_openapi_schema_with_their_problems():
    schema = APIClient().get("/api/schema/?format=json").json()
    verify_post = schema["paths"]["/api/v1/auth/mfa/verify"]["post"]
    assert {"200", "400", "429"} <= set(verify_post["responses"])
    problem = verify_post["responses"]["400"]["content"]["application/problem+json"]["schema"]
    codes = set(problem["allOf"][1]["properties"]["code"]["enum"])
    assert {"invalid_code", "passkey_invalid", "token_invalid", "validation_error"} <= codes
    # What no JSON Schema can say is named, so a fuzzer's valid-looking request may get it.
    assert {"invalid_code", "token_invalid", "code"} <= set(verify_post["x-unstated-rules"])
    passkeys = schema["paths"]["/api/v1/auth/mfa/passkeys"]["get"]["responses"]["200"]
    page = passkeys["content"]["application/json"]["schema"]["$ref"].rpartition("/")[2]
    assert {"next", "previous", "results"} <= set(
        schema["components"]["schemas"][page]["properties"]
    )
    for path in (
        "/api/v1/auth/mfa",
        "/api/v1/auth/mfa/totp",
        "/api/v1/auth/mfa/totp/confirm",
        "/api/v1/auth/mfa/recovery-codes",
        "/api/v1/auth/mfa/passkeys",
        "/api/v1/auth/mfa/passkey-sign-in",
        "/api/v1/auth/mfa/reauthenticate",
    ):
        assert path in schema["paths"]


def test_a_code_works_once_and_drift_of_one_step_either_side(ada):
    totp, _codes = enrol_totp(signed_in(ada))
    # The confirmation used the current step: that code, and the one before, are spent.
    assert_problem(verify(second_step(ada)["mfa_token"], "totp", totp.now()), 400, "invalid_code")
    assert_problem(
        verify(second_step(ada)["mfa_token"], "totp", at_step(totp, -1)), 400, "invalid_code"
    )
    # Two steps ahead is past the allowed drift.
    assert_problem(
        verify(second_step(ada)["mfa_token"], "totp", at_step(totp, 2)), 400, "invalid_code"
    )
    # One step ahead is within it, once.
    code = at_step(totp, 1)
    assert verify(second_step(ada)["mfa_token"], "totp", code).status_code == 200
    assert_problem(verify(second_step(ada)["mfa_token"], "totp", code), 400, "invalid_code")
    failed = AuditLog.objects.filter(event_type="mfa.challenge_failed", user_id=ada.pk)
    assert failed.count() == 4
    assert "code" not in str(list(failed.values_list("metadata", flat=True))).replace(
        "wrong_code", ""
    )


def test_a_code_from_the_step_before_is_accepted(ada, monkeypatch):
    totp, _codes = enrol_totp(signed_in(ada))
    later = mfa.mfa_now() + timedelta(seconds=90)
    monkeypatch.setattr(mfa, "mfa_now", lambda: later)
    assert verify(second_step(ada)["mfa_token"], "totp", at_step(totp, -1)).status_code == 200


def test_wrong_codes_lock_the_account_like_wrong_passwords(ada, settings):
    enrol_totp(signed_in(ada))
    client = new_client()
    step = sign_in(client, ada.email).json()
    for _ in range(settings.SV_LOCKOUT_THRESHOLD):
        verify(step["mfa_token"], "totp", "123456", client=client)
    locked = verify(step["mfa_token"], "totp", "123456", client=client)
    assert_problem(locked, 429, "rate_limited")
    # The same lockout stops the password step from that address too.
    assert_problem(sign_in(client, ada.email), 429, "rate_limited")
    assert AuditLog.objects.filter(event_type="auth.locked_out", user_id=ada.pk).exists()


def test_a_recovery_code_works_once(ada):
    _totp, codes = enrol_totp(signed_in(ada))
    first = verify(second_step(ada)["mfa_token"], "recovery_code", codes[0].upper())
    assert first.status_code == 200
    assert_problem(
        verify(second_step(ada)["mfa_token"], "recovery_code", codes[0]), 400, "invalid_code"
    )
    assert signed_in_status(first)["recovery_codes_left"] == 9


def signed_in_status(response) -> dict:
    return bearer(response.json()["session"]["token"]).get("/api/v1/auth/mfa").json()


def test_regenerating_recovery_codes_voids_the_old_set(ada):
    client = signed_in(ada)
    _totp, old = enrol_totp(client)
    new = client.post("/api/v1/auth/mfa/recovery-codes")
    assert new.status_code == 200
    new_codes = new.json()["recovery_codes"]
    assert not set(new_codes) & set(old)
    assert_problem(
        verify(second_step(ada)["mfa_token"], "recovery_code", old[1]), 400, "invalid_code"
    )
    assert verify(second_step(ada)["mfa_token"], "recovery_code", new_codes[1]).status_code == 200


def test_an_mfa_token_works_once_and_not_after_it_expires(ada):
    totp, _codes = enrol_totp(signed_in(ada))
    token = second_step(ada)["mfa_token"]
    assert verify(token, "totp", at_step(totp, 1)).status_code == 200
    assert_problem(verify(token, "totp", at_step(totp, 0)), 400, "token_invalid")

    late = second_step(ada)["mfa_token"]
    Verification.objects.filter(identifier__startswith="mfa-").update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert_problem(verify(late, "totp", at_step(totp, 0)), 400, "token_invalid")


def test_sensitive_actions_need_a_recent_authentication(ada, monkeypatch):
    client = signed_in(ada)
    totp, _codes = enrol_totp(client)
    later = mfa.mfa_now() + timedelta(minutes=11)
    monkeypatch.setattr(mfa, "mfa_now", lambda: later)
    assert_problem(client.delete("/api/v1/auth/mfa/totp"), 403, "reauthentication_required")
    assert_problem(
        client.post(
            "/api/v1/auth/change-password",
            {"current_password": PASSWORD, "new_password": "a good new passphrase"},
            format="json",
        ),
        403,
        "reauthentication_required",
    )
    wrong = client.post("/api/v1/auth/mfa/reauthenticate", {"password": "nope"}, format="json")
    assert_problem(wrong, 400, "invalid_password")
    again = client.post(
        "/api/v1/auth/mfa/reauthenticate",
        {"method": "totp", "code": at_step(totp, 1)},
        format="json",
    )
    assert again.status_code == 200, again.content
    assert client.delete("/api/v1/auth/mfa/totp").status_code == 204
    assert AuditLog.objects.filter(event_type="mfa.disabled", user_id=ada.pk).exists()
    assert not RecoveryCode.objects.filter(user=ada).exists()
    assert "session" in sign_in(new_client(), ada.email).json()


# Enforcement by role ------------------------------------------------------------------------


@pytest.fixture
def enforced(settings):
    settings.SV_MFA_ENFORCE = True
    settings.SV_MFA_GRACE_PERIOD = 0


def test_a_role_that_requires_mfa_limits_sessions_to_enrolment(enforced, ada):
    finance = RoleFactory(name="finance", permissions=["users:read"])
    role_grant(user=ada, role=finance)
    # Not flagged: nothing changes.
    assert signed_in(ada).get("/api/v1/users").status_code == 200
    root = UserFactory(email="root@example.com", password=PASSWORD, is_superuser=True)
    # The root's own session must enrol first, then may flag the role.
    operator = signed_in(root)
    enrol_totp(operator)
    flagged = operator.patch(f"/api/v1/roles/{finance.pk}", {"requires_mfa": True}, format="json")
    assert flagged.status_code == 200 and flagged.json()["requires_mfa"] is True
    client = signed_in(ada)
    assert_problem(client.get("/api/v1/users"), 403, "mfa_enrollment_required")
    assert_problem(client.get("/api/v1/auth/me"), 403, "mfa_enrollment_required")
    status = client.get("/api/v1/auth/mfa")
    assert status.status_code == 200 and status.json()["enrollment_required_by"]
    enrol_totp(client)
    # Enrolled: the same session reaches everything its permissions allow.
    assert client.get("/api/v1/users").status_code == 200


def test_staff_need_a_second_factor_by_default_after_the_grace_period(enforced, settings):
    settings.SV_MFA_GRACE_PERIOD = 3600
    operator = UserFactory(email="op@example.com", password=PASSWORD, is_staff=True)
    assert signed_in(operator).get("/api/v1/auth/me").status_code == 200
    User = type(operator)
    User.objects.filter(pk=operator.pk).update(created_at=timezone.now() - timedelta(hours=2))
    assert_problem(signed_in(operator).get("/api/v1/auth/me"), 403, "mfa_enrollment_required")


def test_the_admin_role_requires_mfa_by_default(enforced):
    from permissions_app.models import Role

    assert Role.objects.get(name="admin").requires_mfa
    root = UserFactory(email="root@example.com", password=PASSWORD, is_superuser=True)
    assert_problem(signed_in(root).get("/api/v1/users"), 403, "mfa_enrollment_required")


def test_a_passkey_holder_enrolling_totp_keeps_their_recovery_codes(ada):
    from auth_app.models import Passkey

    client = signed_in(ada)
    Passkey.objects.create(
        user=ada, name="Laptop", credential_id="cred-1", public_key=b"k", device_type="single"
    )
    kept = mfa.recovery_codes_generate(user=ada, actor=ada)

    _totp, codes = enrol_totp(client)

    # The codes came with the passkey, the first factor; the authenticator app adds none.
    assert codes == []
    assert RecoveryCode.objects.filter(user=ada, used_at__isnull=True).count() == len(kept)
    assert mfa.recovery_code_use(ada, kept[0])
