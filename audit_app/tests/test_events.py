"""Each event that exists today is written by the action that causes it."""

import pytest
from django.contrib import admin

from audit_app.admin_log import audited_delete_selected
from audit_app.models import AuditLog
from auth_app.models import User
from conftest import run_worker
from email_app.models import EmailSend
from permissions_app.models import Role
from permissions_app.services import role_grant
from platform_app.flows import user_onboard


def events(**filters) -> list[str]:
    return list(
        AuditLog.objects.filter(**filters).order_by("id").values_list("event_type", flat=True)
    )


@pytest.mark.django_db(transaction=True)
def test_onboarding_writes_user_created_role_assigned_and_email_queued_then_sent():
    user = user_onboard(email="ada@example.com", name="Ada")

    assert events(user_id=user.pk) == ["role.assigned", "user.created", "email.queued"]
    send = EmailSend.objects.get(user=user)
    queued = AuditLog.objects.get(event_type="email.queued")
    assert (queued.target_type, queued.target_id) == ("email_send", send.pk)

    run_worker()

    assert events(user_id=user.pk)[-1] == "email.sent"
    assert AuditLog.objects.get(event_type="email.sent").target_id == send.pk


@pytest.mark.django_db
def test_granting_a_role_writes_role_assigned_with_who_granted_it():
    admin = user_onboard(email="root@example.com", is_superuser=True)
    user = user_onboard(email="ada@example.com")

    role_grant(user=user, role=Role.objects.get(name="auditor"), granted_by=admin)

    row = AuditLog.objects.filter(event_type="role.assigned", user_id=user.pk).latest("id")
    assert row.actor_id == admin.pk
    assert row.metadata["role"] == "auditor"


@pytest.mark.django_db
@pytest.mark.urls("audit_app.tests.admin_probe")
def test_deleting_in_the_admin_one_or_many_writes_one_admin_action_each(admin_client, root):
    # Bare users: roles and cache rows would cascade into admins that refuse deletes.
    users = [User.objects.create(email=f"u{i}@example.com") for i in range(3)]

    response = admin_client.post(
        f"/probe-admin/auth_app/user/{users[0].pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 302, response.content[:2000]
    response = admin_client.post(
        "/probe-admin/auth_app/user/",
        {
            "action": "delete_selected",
            "_selected_action": [users[1].pk, users[2].pk],
            "post": "yes",
        },
    )
    assert response.status_code == 302, response.content[:2000]

    assert not User.objects.filter(pk__in=[u.pk for u in users]).exists()
    deleted = AuditLog.objects.filter(event_type="admin.action", metadata__action="deleted")
    assert sorted(deleted.values_list("target_id", flat=True)) == sorted(u.pk for u in users)
    assert {row.actor_id for row in deleted} == {root.pk}


def test_the_site_wide_delete_selected_action_is_the_audited_one():
    assert admin.site.get_action("delete_selected") is audited_delete_selected


@pytest.mark.django_db
def test_deleting_a_user_keeps_their_audit_rows():
    user = user_onboard(email="ada@example.com")
    trail = set(AuditLog.objects.filter(user_id=user.pk).values_list("id", flat=True))
    assert trail

    User.objects.filter(pk=user.pk).delete()

    assert set(AuditLog.objects.filter(user_id=user.pk).values_list("id", flat=True)) == trail
