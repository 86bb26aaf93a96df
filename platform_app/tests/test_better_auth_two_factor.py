"""better-auth's two-factor plugin at /api/auth/two-factor/: the refused paths (wrong codes, a
forged, expired or reused two-factor cookie, a missing password) and what the server keeps.

The official client drives the successful calls against a live server (tests/better_auth).
"""

from urllib.parse import unquote

import pyotp
import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from audit_app.models import AuditLog
from auth_app import mfa
from auth_app.models import RecoveryCode, Session, TwoFactor, Verification
from auth_app.services import session_create
from auth_app.tests.conftest import new_ip
from auth_app.tests.test_mfa import at_step
from platform_app.better_auth.cookies import COOKIE_NAME, TWO_FACTOR_COOKIE_NAME, token_sign
from platform_app.tests.test_better_auth import (  # noqa: F401 (_front_end: the settings)
    BASE,
    FRONT,
    _front_end,
    bearer_client,
    error,
)
from tests.support import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def totp(user) -> pyotp.TOTP:
    """`user` (ada) with a confirmed authenticator app."""
    enrolment = mfa.totp_enroll_start(user=user)
    secret = pyotp.TOTP(enrolment.secret)
    mfa.totp_confirm(user=user, code=at_step(secret, -1))
    return secret


def wrong_code(totp: pyotp.TOTP) -> str:
    """Six digits that are no code of the steps accepted now."""
    accepted = {at_step(totp, offset) for offset in (-1, 0, 1)}
    return next(c for c in (f"{n:06d}" for n in range(4)) if c not in accepted)


def browser() -> APIClient:
    return APIClient(REMOTE_ADDR=new_ip(), HTTP_ORIGIN=FRONT)


def password_step(client) -> str:
    """signIn.email for ada: the plugin's answer, and the two-factor cookie it leaves."""
    response = client.post(
        f"{BASE}/sign-in/email", {"email": "ada@example.com", "password": PASSWORD}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json() == {"twoFactorRedirect": True, "twoFactorMethods": ["totp"]}
    assert COOKIE_NAME not in response.cookies
    cookie = response.cookies[TWO_FACTOR_COOKIE_NAME]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    return unquote(cookie.value)


def test_the_second_step_opens_the_session_once_and_only_with_the_right_code(user, totp):
    client = browser()
    signed = password_step(client)

    wrong = client.post(f"{BASE}/two-factor/verify-totp", {"code": wrong_code(totp)}, format="json")
    error(wrong, 401, "INVALID_CODE")
    assert AuditLog.objects.filter(event_type="mfa.challenge_failed", user_id=user.pk).exists()
    assert not Session.objects.filter(user=user).exists()

    right = client.post(f"{BASE}/two-factor/verify-totp", {"code": at_step(totp, 0)}, format="json")
    assert right.status_code == 200, right.content
    assert right.json()["user"]["email"] == "ada@example.com"
    assert right.cookies[TWO_FACTOR_COOKIE_NAME]["max-age"] == 0
    assert right.cookies[COOKIE_NAME].value
    session = Session.objects.get(user=user)
    assert session.amr == ["otp", "pwd"]

    # The same pending sign-in cannot open a second session.
    again = APIClient(REMOTE_ADDR=new_ip(), HTTP_ORIGIN=FRONT)
    again.cookies[TWO_FACTOR_COOKIE_NAME] = signed
    replay = again.post(f"{BASE}/two-factor/verify-totp", {"code": at_step(totp, 1)}, format="json")
    error(replay, 401, "INVALID_TWO_FACTOR_COOKIE")
    assert Session.objects.filter(user=user).count() == 1


def test_a_forged_an_expired_or_a_missing_two_factor_cookie_is_refused(user, totp):
    client = browser()
    signed = password_step(client)
    mfa_token = signed.rpartition(".")[0]
    code = {"code": at_step(totp, 0)}

    forged = browser()
    forged.cookies[TWO_FACTOR_COOKIE_NAME] = f"{mfa_token}.{token_sign('other')[-44:]}"
    error(forged.post(f"{BASE}/two-factor/verify-totp", code, format="json"), 401,
          "INVALID_TWO_FACTOR_COOKIE")  # fmt: skip
    unsigned = browser()
    unsigned.cookies[TWO_FACTOR_COOKIE_NAME] = mfa_token
    error(unsigned.post(f"{BASE}/two-factor/verify-totp", code, format="json"), 401,
          "INVALID_TWO_FACTOR_COOKIE")  # fmt: skip
    error(browser().post(f"{BASE}/two-factor/verify-totp", code, format="json"), 401,
          "INVALID_TWO_FACTOR_COOKIE")  # fmt: skip

    Verification.objects.filter(user=user, identifier__startswith="mfa-").update(
        expires_at=timezone.now()
    )
    error(client.post(f"{BASE}/two-factor/verify-totp", code, format="json"), 401,
          "INVALID_TWO_FACTOR_COOKIE")  # fmt: skip
    assert not Session.objects.filter(user=user).exists()


def test_the_two_factor_cookie_needs_a_trusted_origin(user, totp):
    client = APIClient(REMOTE_ADDR=new_ip())
    client.post(
        f"{BASE}/sign-in/email",
        {"email": "ada@example.com", "password": PASSWORD},
        format="json",
        HTTP_ORIGIN=FRONT,
    )

    response = client.post(
        f"{BASE}/two-factor/verify-totp",
        {"code": at_step(totp, 0)},
        format="json",
        HTTP_ORIGIN="http://evil.example",
    )

    error(response, 403, "INVALID_ORIGIN")
    assert not Session.objects.filter(user=user).exists()


def test_a_backup_code_finishes_a_sign_in_once(user, totp):
    codes = mfa.recovery_codes_generate(user=user, actor=user)
    client = browser()
    password_step(client)

    wrong = client.post(f"{BASE}/two-factor/verify-backup-code", {"code": "abcde-fghij"},
                        format="json")  # fmt: skip
    error(wrong, 401, "INVALID_BACKUP_CODE")
    right = client.post(f"{BASE}/two-factor/verify-backup-code", {"code": codes[0]},
                        format="json")  # fmt: skip
    assert right.status_code == 200, right.content

    other = browser()
    password_step(other)
    used = other.post(f"{BASE}/two-factor/verify-backup-code", {"code": codes[0]},
                      format="json")  # fmt: skip
    error(used, 401, "INVALID_BACKUP_CODE")


def test_enable_needs_the_password_and_its_codes_work_once_the_app_is_confirmed(user):
    _session, token = session_create(user=user)
    client = bearer_client(token)

    error(client.post(f"{BASE}/two-factor/enable", {}, format="json"), 400, "INVALID_PASSWORD")
    wrong = client.post(f"{BASE}/two-factor/enable", {"password": "x" * 12}, format="json")
    error(wrong, 400, "INVALID_PASSWORD")
    assert not TwoFactor.objects.filter(user=user).exists()

    enabled = client.post(f"{BASE}/two-factor/enable", {"password": PASSWORD}, format="json")
    body = enabled.json()
    assert body["method"] == "totp" and body["totpURI"].startswith("otpauth://totp/")
    assert len(body["backupCodes"]) == 10
    assert not mfa.mfa_enabled(user)  # until a first code confirms it
    secret = pyotp.parse_uri(body["totpURI"])
    wrong = client.post(f"{BASE}/two-factor/verify-totp", {"code": wrong_code(secret)},
                        format="json")  # fmt: skip
    error(wrong, 401, "INVALID_CODE")
    confirmed = client.post(f"{BASE}/two-factor/verify-totp", {"code": secret.now()},
                            format="json")  # fmt: skip
    assert confirmed.status_code == 200, confirmed.content
    assert mfa.mfa_enabled(user)
    # The codes shown by enable are the ones that work: confirming made no new set.
    assert mfa.recovery_code_use(user, body["backupCodes"][0])
    assert RecoveryCode.objects.filter(user=user, used_at__isnull=True).count() == 9

    again = client.post(f"{BASE}/two-factor/enable", {"password": PASSWORD}, format="json")
    error(again, 400, "TOTP_ALREADY_ENABLED")
    uri = client.post(f"{BASE}/two-factor/get-totp-uri", {"password": PASSWORD}, format="json")
    error(uri, 400, "TOTP_ALREADY_ENABLED")


def test_disable_and_new_backup_codes_need_the_password(user, totp):
    _session, token = session_create(user=user)
    client = bearer_client(token)

    for path in ("disable", "generate-backup-codes"):
        wrong = client.post(f"{BASE}/two-factor/{path}", {"password": "x" * 12}, format="json")
        error(wrong, 400, "INVALID_PASSWORD")
    assert mfa.mfa_enabled(user)

    codes = client.post(
        f"{BASE}/two-factor/generate-backup-codes", {"password": PASSWORD}, format="json"
    ).json()
    assert codes["status"] is True and len(codes["backupCodes"]) == 10
    disabled = client.post(f"{BASE}/two-factor/disable", {"password": PASSWORD}, format="json")
    assert disabled.json() == {"status": True}
    assert not mfa.mfa_enabled(user)
    error(client.post(f"{BASE}/two-factor/disable", {"password": PASSWORD}, format="json"), 400,
          "TWO_FACTOR_NOT_ENABLED")  # fmt: skip


@pytest.mark.parametrize("path", ["send-otp", "verify-otp"])
def test_mailed_codes_are_not_a_second_factor_here(path):
    response = browser().post(f"{BASE}/two-factor/{path}", {"code": "123456"}, format="json")

    error(response, 400, "OTP_NOT_CONFIGURED")
