"""The admin and second factors: a two-step login, enrolment before anything else, reset."""

import re
from io import StringIO

import pyotp
import pytest
from django.core.management import call_command
from django.test import Client

from audit_app.models import AuditLog
from auth_app import mfa
from auth_app.models import RecoveryCode, Session, TwoFactor
from auth_app.services import session_create
from auth_app.tests.factories import UserFactory
from tests.support import PASSWORD, admin_client_for, staff

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/?next=/admin/"


@pytest.fixture
def enforced(settings):
    settings.SV_MFA_ENFORCE = True
    settings.SV_MFA_GRACE_PERIOD = 0


def with_totp(user) -> tuple[pyotp.TOTP, list[str]]:
    enrolment = mfa.totp_enroll_start(user=user)
    totp = pyotp.TOTP(enrolment.secret)
    return totp, mfa.totp_confirm(user=user, code=totp.now())


def next_code(totp) -> str:
    return totp.generate_otp(int(mfa.mfa_now().timestamp()) // 30 + 1)


def password_step(client, email):
    response = client.post(LOGIN, {"username": email, "password": PASSWORD})
    assert response.status_code == 200
    page = response.content.decode()
    token = re.search(r'name="mfa_token" value="([^"]+)"', page)
    assert token, page
    return token.group(1), page


def test_the_admin_login_asks_a_user_with_totp_for_a_code(root):
    totp, _codes = with_totp(root)
    client = Client()
    token, page = password_step(client, root.email)
    assert "authenticator" in page
    # The password alone signed nobody in.
    assert client.get("/admin/").status_code == 302
    assert not AuditLog.objects.filter(event_type="auth.sign_in", user_id=root.pk).exists()

    wrong = client.post(LOGIN, {"mfa_token": token, "code": "000000"})
    assert wrong.status_code == 200 and "wrong" in wrong.content.decode()
    assert AuditLog.objects.filter(event_type="mfa.challenge_failed", user_id=root.pk).exists()

    right = client.post(LOGIN, {"mfa_token": token, "code": next_code(totp)})
    assert right.status_code == 302 and right["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    assert Session.objects.get(user=root).amr == ["otp", "pwd"]
    assert AuditLog.objects.filter(event_type="auth.sign_in", user_id=root.pk).exists()


def test_the_admin_login_takes_a_recovery_code_once(root):
    _totp, codes = with_totp(root)
    first = Client()
    token, _page = password_step(first, root.email)
    assert first.post(LOGIN, {"mfa_token": token, "code": codes[0]}).status_code == 302
    again = Client()
    token, _page = password_step(again, root.email)
    assert again.post(LOGIN, {"mfa_token": token, "code": codes[0]}).status_code == 200
    assert again.get("/admin/").status_code == 302


def test_staff_without_a_second_factor_must_set_one_up_first(enforced, root):
    client = admin_client_for(root)
    response = client.get("/admin/auth_app/user/")
    assert response.status_code == 302 and response["Location"] == "/admin/mfa/"
    started = client.post("/admin/mfa/", {"start": "1"}).content.decode()
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', started).group(1)
    done = client.post("/admin/mfa/", {"code": pyotp.TOTP(secret).now()}).content.decode()
    assert done.count("<li><code>") == 10
    assert client.get("/admin/auth_app/user/").status_code == 200


def test_make_run_s_first_admin_is_told_about_the_second_factor(enforced):
    out = StringIO()
    call_command("create_first_admin", stdout=out)
    assert "second factor" in out.getvalue()
    # Once: a second run finds the admin and says nothing more about it.
    again = StringIO()
    call_command("create_first_admin", stdout=again)
    assert "second factor" not in again.getvalue()


def test_resetting_mfa_removes_factors_and_ends_sessions(root):
    ada = UserFactory(email="ada@example.com", password=PASSWORD)
    with_totp(ada)
    session_create(user=ada)
    client = admin_client_for(root)
    page = client.get(f"/admin/auth_app/user/{ada.pk}/change/").content.decode()
    assert "Recovery codes left" in page and "on since" in page
    response = client.post(
        "/admin/auth_app/user/", {"action": "reset_mfa", "_selected_action": [ada.pk]}
    )
    assert response.status_code == 302
    assert not TwoFactor.objects.filter(user=ada).exists()
    assert not RecoveryCode.objects.filter(user=ada).exists()
    assert not Session.objects.filter(user=ada).exists()
    assert AuditLog.objects.filter(event_type="mfa.reset", user_id=ada.pk, actor_id=root.pk)


def test_only_a_superuser_resets_the_mfa_of_staff():
    manager = staff("manager@example.com", "users:read", "users:write")
    operator = staff("op@example.com", "users:read")
    with_totp(operator)
    client = admin_client_for(manager)
    client.post("/admin/auth_app/user/", {"action": "reset_mfa", "_selected_action": [operator.pk]})
    assert TwoFactor.objects.filter(user=operator).exists()
    assert not AuditLog.objects.filter(event_type="mfa.reset").exists()


def test_the_dashboard_counts_staff_with_and_without_mfa(root):
    staff("op@example.com", "users:read")
    with_totp(root)
    page = admin_client_for(root).get("/admin/").content.decode()
    counts = dict(
        re.findall(
            r'<th scope="row"><a href="[^"]*">(Staff with(?:out)? MFA)</a></th>\s*'
            r'<td class="sv-count"><a href="[^"]*">(\d+)</a>',
            page,
        )
    )
    assert counts == {"Staff with MFA": "1", "Staff without MFA": "1"}
