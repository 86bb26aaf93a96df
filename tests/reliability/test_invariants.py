"""check_invariants: quiet on honest data, and names each kind of damage."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from email_app.models import EmailSend
from permissions_app.models import PermissionCache, UserRole
from platform_app.flows import user_onboard

pytestmark = pytest.mark.django_db


def check() -> str:
    err = io.StringIO()
    with pytest.raises(CommandError, match="invariant violation"):
        call_command("check_invariants", stdout=io.StringIO(), stderr=err)
    return err.getvalue()


def test_honest_data_passes():
    user_onboard(email="ada@example.com")
    user_onboard(email="root@example.com", is_superuser=True)
    out = io.StringIO()
    call_command("check_invariants", stdout=out)
    assert "All invariants hold" in out.getvalue()


def test_a_missing_default_role_and_a_stale_cache_are_reported():
    user = user_onboard(email="ada@example.com")
    UserRole.objects.filter(user=user).delete()  # behind the services' back: cache now stale
    report = check()
    assert f"[default_role] user {user.pk}" in report
    assert f"[permission_cache] user {user.pk}: cache" in report


def test_a_missing_cache_row_is_reported():
    user = user_onboard(email="ada@example.com")
    PermissionCache.objects.filter(user=user).delete()
    assert f"user {user.pk} has no cache row" in check()


def test_a_cache_row_with_a_wrong_expiry_is_reported_as_the_repair_sees_it():
    # One comparison of cache and truth (issue 16): the invariant check and
    # rebuild_permission_cache agree, valid_until included.
    user = user_onboard(email="ada@example.com")
    PermissionCache.objects.filter(user=user).update(valid_until=timezone.now())
    assert f"[permission_cache] user {user.pk}: cache" in check()
    call_command("rebuild_permission_cache", stdout=io.StringIO())
    out = io.StringIO()
    call_command("check_invariants", stdout=out)
    assert "All invariants hold" in out.getvalue()


def test_a_send_stuck_in_sending_is_reported(settings):
    user = user_onboard(email="ada@example.com")
    send = EmailSend.objects.get(user=user)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {EmailSend._meta.db_table} SET status = 'sending',"  # noqa: S608
            " updated_at = now() - interval '1 day' WHERE id = %s",
            [send.pk],
        )
    assert f"[email] send {send.pk} stuck in sending" in check()


def test_tampered_audit_evidence_is_reported():
    user_onboard(email="ada@example.com")
    with connection.cursor() as cursor:
        # As the owner, with the append-only trigger out of the way, as an intruder would.
        cursor.execute('ALTER TABLE "audit"."audit_logs" DISABLE TRIGGER USER')
        cursor.execute(
            """UPDATE "audit"."audit_logs" SET metadata = '{"forged": true}'
               WHERE id = (SELECT min(id) FROM "audit"."audit_logs")"""
        )
        cursor.execute('ALTER TABLE "audit"."audit_logs" ENABLE TRIGGER USER')
    assert "[audit_evidence]" in check()


def test_a_confirmed_totp_without_a_secret_and_factors_of_a_deleted_user_are_reported():
    import pyotp

    from auth_app import mfa
    from auth_app.models import RecoveryCode, TwoFactor

    ada = user_onboard(email="ada@example.com")
    grace = user_onboard(email="grace@example.com")
    for user in (ada, grace):
        secret = mfa.totp_enroll_start(user=user).secret
        mfa.totp_confirm(user=user, code=pyotp.TOTP(secret).now())
    TwoFactor.objects.filter(user=ada).update(secret="")
    grace_factor = TwoFactor.objects.get(user=grace)
    codes = RecoveryCode.objects.filter(user=grace).count()
    with connection.cursor() as cursor:
        # Behind the foreign keys' back (triggers off), as a hand-made DELETE of the user
        # row would leave them: pointing at a user who is gone.
        cursor.execute("SET session_replication_role = replica")
        for table in (TwoFactor._meta.db_table, RecoveryCode._meta.db_table):
            cursor.execute(
                f"UPDATE {table} SET user_id = 'gone' WHERE user_id = %s",  # noqa: S608
                [grace.pk],
            )
        cursor.execute("SET session_replication_role = DEFAULT")
    report = check()
    ada_factor = TwoFactor.objects.get(user=ada)
    assert f"[mfa] TOTP {ada_factor.pk} is confirmed but has no secret" in report
    assert f"[mfa] TOTP {grace_factor.pk} belongs to a missing user" in report
    assert report.count("[mfa] recovery code") == codes == 10
