"""create_role, grant_role, revoke_role, user_permissions and rebuild_permission_cache."""

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from audit_app.models import AuditLog
from auth_app.tests.factories import UserFactory
from permissions_app import services
from permissions_app.models import PermissionCache, Role, UserRole
from permissions_app.tests.factories import RoleFactory
from tests.support import Terminal

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_role_creates_an_audited_role():
    output = run("create_role", "support", "-p", "users:read", "-p", "sessions:*")
    assert Role.objects.get(name="support").permissions == ["sessions:*", "users:read"]
    assert "Created role support" in output
    assert AuditLog.objects.filter(event_type="role.created").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["support", "-p", "users:fly"], "users:fly"),
        (["user"], "already exists"),
        (["Not A Slug"], "name"),
    ],
)
def test_create_role_rejects_bad_input_with_a_command_error(args, message):
    with pytest.raises(CommandError, match=message):
        run("create_role", *args)


def test_grant_role_gives_the_permissions_and_an_expiry():
    user = UserFactory(email="ada@example.com")
    later = (timezone.now() + timedelta(days=2)).replace(microsecond=0)

    output = run("grant_role", "ADA@example.com", "auditor", "--expires-at", later.isoformat())

    assert "Granted role auditor for ada@example.com" in output
    assert UserRole.objects.get(user=user, role__name="auditor").expires_at == later
    assert "audit:read" in PermissionCache.objects.get(user=user).permissions
    assert "Renewed" in run("grant_role", user.pk, "auditor")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nobody@example.com", "auditor"], "No user"),
        (["ada@example.com", "nope"], "No role"),
        (["ada@example.com", "auditor", "--expires-at", "tomorrow"], "ISO 8601"),
        (["ada@example.com", "auditor", "--expires-at", "2001-01-01T00:00:00"], "future"),
        (["ada@example.com", "auditor", "--expires-at", "2030-02-31T00:00:00"], "ISO 8601"),
    ],
)
def test_grant_role_rejects_bad_input_with_a_command_error(args, message):
    UserFactory(email="ada@example.com")
    with pytest.raises(CommandError, match=message):
        run("grant_role", *args)


def test_revoke_role_takes_the_permissions_away():
    user = UserFactory(email="ada@example.com")
    services.role_grant(user=user, role=Role.objects.get(name="auditor"))

    assert "Revoked role auditor" in run("revoke_role", "ada@example.com", "auditor")

    assert "audit:read" not in PermissionCache.objects.get(user=user).permissions
    with pytest.raises(CommandError, match="does not have this role"):
        run("revoke_role", "ada@example.com", "auditor")


def test_user_permissions_says_where_each_permission_comes_from():
    user = UserFactory(email="ada@example.com")
    services.role_grant(user=user, role=RoleFactory(name="support", permissions=["audit:read"]))
    services.role_grant(user=user, role=Role.objects.get(name="auditor"))

    output = run("user_permissions", "ada@example.com")

    lines = {line.split()[0]: line for line in output.splitlines()}
    assert lines["audit:read"].endswith("from auditor, support")
    assert lines["profile:read"].endswith("from user")
    assert "role support: no expiry" in output
    with pytest.raises(CommandError, match="No user"):
        run("user_permissions", "nobody@example.com")


def test_rebuild_reports_and_fixes_rows_that_disagree():
    good, bad, missing = UserFactory(), UserFactory(), UserFactory()
    PermissionCache.objects.filter(user=bad).update(permissions=["*"], roles=["admin"])
    PermissionCache.objects.filter(user=missing).delete()

    output = run("rebuild_permission_cache", "--batch-size", "2")

    assert f"{bad.pk}: permissions ['*'] -> ['profile:read', 'profile:write']" in output
    assert f"{missing.pk}: missing row added" in output
    assert good.pk not in output
    assert "Checked 3 user(s); fixed 2 row(s)." in output
    assert "\r" not in output  # no progress bar when not on a terminal
    assert PermissionCache.objects.get(user=bad).permissions == ["profile:read", "profile:write"]
    assert "fixed 0 row(s)" in run("rebuild_permission_cache")


def test_rebuild_of_one_user_and_its_progress_bar_on_a_terminal():
    user = UserFactory(email="ada@example.com")
    PermissionCache.objects.filter(user=user).update(roles=[])
    terminal = Terminal()

    call_command("rebuild_permission_cache", "--user", "ada@example.com", stdout=terminal)

    assert "[" + "#" * 30 + "] 1/1" in terminal.getvalue()
    assert "Checked 1 user(s); fixed 1 row(s)." in terminal.getvalue()
    with pytest.raises(CommandError, match="No user"):
        run("rebuild_permission_cache", "--user", "nobody@example.com")
    with pytest.raises(CommandError, match="at least 1"):
        run("rebuild_permission_cache", "--batch-size", "0")
    with pytest.raises(CommandError):
        run("rebuild_permission_cache", "--batch-size", "many")
