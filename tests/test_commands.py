"""createsuperuser, create_user and create_first_admin go through user_onboard."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit_app.models import AuditLog
from auth_app.models import User
from email_app.models import EmailSend
from permissions_app.models import PermissionCache

pytestmark = pytest.mark.django_db


def test_createsuperuser_onboards_a_superuser_with_the_admin_role(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a long enough passphrase")
    call_command("createsuperuser", "--noinput", email="Root@Example.com", stdout=io.StringIO())

    user = User.objects.get()
    assert user.is_superuser and user.is_staff
    assert user.check_password("a long enough passphrase")
    cache = PermissionCache.objects.get(user=user)
    assert cache.roles == ["admin"] and cache.permissions == ["*"]
    assert AuditLog.objects.filter(event_type="user.created", user_id=user.pk).exists()
    assert EmailSend.objects.filter(user=user, template__key="verify-email").exists()


def test_createsuperuser_refuses_an_email_taken_in_another_letter_case(monkeypatch):
    call_command("create_user", "root@example.com", stdout=io.StringIO())
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a long enough passphrase")
    with pytest.raises(CommandError, match="already exists"):
        call_command("createsuperuser", "--noinput", email="ROOT@example.com", stdout=io.StringIO())
    assert User.objects.count() == 1


def test_create_user_reads_the_password_from_stdin(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough passphrase\n"))
    out = io.StringIO()
    call_command("create_user", "ada@example.com", "--name", "Ada", "--password-stdin", stdout=out)

    user = User.objects.get(email="ada@example.com")
    assert user.check_password("a long enough passphrase")
    assert user.name == "Ada"
    assert "Created user ada@example.com" in out.getvalue()


def test_create_user_without_password_gives_an_unusable_one():
    call_command("create_user", "ext@example.com", stdout=io.StringIO())
    assert not User.objects.get().has_usable_password()


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["not-an-email"], "", "Enter a valid email address"),
        (["weak@example.com", "--password-stdin"], "123\n", "password"),
        (["empty@example.com", "--password-stdin"], "", "standard input was empty"),
    ],
)
def test_create_user_rejects_bad_input_with_a_command_error(monkeypatch, args, stdin, message):
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    with pytest.raises(CommandError, match=message):
        call_command("create_user", *args, stdout=io.StringIO())
    assert not User.objects.exists()


def test_create_user_rejects_a_taken_email():
    call_command("create_user", "dup@example.com", stdout=io.StringIO())
    with pytest.raises(CommandError, match="already exists"):
        call_command("create_user", "DUP@example.com", stdout=io.StringIO())


def test_create_first_admin_prints_the_password_once(settings):
    settings.SV_ADMIN_EMAIL = "first@example.com"
    out = io.StringIO()
    call_command("create_first_admin", stdout=out)
    password = out.getvalue().split("password:")[1].strip()
    assert User.objects.get(email="first@example.com").check_password(password)

    again = io.StringIO()
    call_command("create_first_admin", stdout=again)
    assert "password" not in again.getvalue().split("exists")[1]
    assert User.objects.filter(is_superuser=True).count() == 1
