"""The admin follows roles, and changes made there go through the services."""

from datetime import timedelta

import pytest
from django.utils import timezone

from audit_app.models import AuditLog
from auth_app.tests.factories import UserFactory
from permissions_app import services
from permissions_app.backends import catalogue_permission
from permissions_app.models import PermissionCache, Role, UserRole
from permissions_app.tests.factories import RoleFactory
from tests.support import admin_client_for, user_with

pytestmark = pytest.mark.django_db


def test_admin_permissions_map_to_catalogue_permissions():
    assert catalogue_permission("audit_app.view_auditlog") == "audit:read"
    assert catalogue_permission("audit_app.change_auditlog") is None
    assert catalogue_permission("auth_app.view_user") == "users:read"
    assert catalogue_permission("auth_app.change_user") == "users:write"
    assert catalogue_permission("auth_app.delete_user") == "users:delete"
    assert catalogue_permission("permissions_app.change_role") == "roles:write"
    assert catalogue_permission("permissions_app.add_userrole") == "roles:assign"
    assert catalogue_permission("email_app.view_emailsend") == "email:read"
    assert catalogue_permission("email_app.change_emailtemplate") == "email:write"
    assert catalogue_permission("auth_app.delete_session") == "sessions:revoke"
    assert catalogue_permission("procrastinate.view_job") is None


def test_has_perm_follows_roles():
    user = user_with("users:read", "roles:*")
    assert user.has_perm("auth_app.view_user")
    assert not user.has_perm("auth_app.change_user")
    assert user.has_perm("permissions_app.change_role")
    assert user.has_module_perms("permissions_app")
    assert not user.has_module_perms("audit_app")


def test_a_staff_auditor_sees_audit_logs_and_nothing_else():
    auditor = user_with(is_staff=True)
    client = admin_client_for(auditor)
    services.role_grant(user=auditor, role=Role.objects.get(name="auditor"))
    role = RoleFactory()

    index = client.get("/admin/")
    assert index.status_code == 200
    apps = {app["app_label"] for app in index.context["app_list"]}
    assert apps == {"audit_app"}
    assert client.get("/admin/audit_app/auditlog/").status_code == 200
    assert client.get("/admin/auth_app/user/").status_code == 403
    assert client.get(f"/admin/permissions_app/role/{role.pk}/change/").status_code == 403
    assert client.get("/admin/email_app/emailsend/").status_code == 403


def test_without_roles_write_a_role_can_be_seen_but_not_edited():
    client = admin_client_for(user_with("roles:read", is_staff=True))
    role = RoleFactory(permissions=["users:read"])
    url = f"/admin/permissions_app/role/{role.pk}/change/"

    assert client.get(url).status_code == 200
    response = client.post(url, {"name": role.name, "permissions": ["*"]})

    assert response.status_code == 403
    assert Role.objects.get(pk=role.pk).permissions == ["users:read"]


def test_editing_a_role_in_the_admin_is_audited_and_updates_holders(admin_client):
    client = admin_client
    holder = UserFactory()
    role = RoleFactory(permissions=["users:read"])
    services.role_grant(user=holder, role=role)

    response = client.post(
        f"/admin/permissions_app/role/{role.pk}/change/",
        {"name": role.name, "description": "", "permissions": ["users:read", "email:read"]},
    )

    assert response.status_code == 302, response.content
    assert "email:read" in PermissionCache.objects.get(user=holder).permissions
    assert AuditLog.objects.filter(event_type="role.updated", target_id=role.pk).exists()


def test_the_role_form_offers_the_catalogue_as_checkboxes(admin_client):
    client = admin_client
    page = client.get("/admin/permissions_app/role/add/").content.decode()
    assert 'type="checkbox" name="permissions" value="audit:read"' in page
    assert 'value="users:*"' in page

    response = client.post(
        "/admin/permissions_app/role/add/",
        {"name": "support", "description": "", "permissions": ["users:read"]},
    )
    assert response.status_code == 302
    assert Role.objects.get(name="support").permissions == ["users:read"]
    assert AuditLog.objects.filter(event_type="role.created").exists()


def test_granting_on_the_user_page_goes_through_role_grant(admin_client, root):
    client, actor = admin_client, root
    user = UserFactory()
    auditor = Role.objects.get(name="auditor")
    existing = UserRole.objects.get(user=user)
    later = (timezone.now() + timedelta(days=3)).strftime("%Y-%m-%d %H:%M:%S")
    url = f"/admin/auth_app/user/{user.pk}/change/"
    # Other inlines on the page (sessions, accounts...) are posted empty: the user has none.
    others = {
        f"{inline.formset.prefix}-{field}": "0"
        for inline in client.get(url).context["inline_admin_formsets"]
        if inline.formset.prefix != "user_roles"
        for field in ("TOTAL_FORMS", "INITIAL_FORMS")
    }
    form = {
        **others,
        "email": user.email,
        "name": user.name,
        "image": "",
        "is_active": "on",
        "user_roles-TOTAL_FORMS": "2",
        "user_roles-INITIAL_FORMS": "1",
        "user_roles-MIN_NUM_FORMS": "0",
        "user_roles-MAX_NUM_FORMS": "1000",
        "user_roles-0-id": existing.pk,
        "user_roles-0-user": user.pk,
        "user_roles-0-role": existing.role_id,
        "user_roles-0-DELETE": "on",
        "user_roles-1-user": user.pk,
        "user_roles-1-role": auditor.pk,
        "user_roles-1-expires_at_0": later[:10],
        "user_roles-1-expires_at_1": later[11:],
    }

    response = client.post(url, form)

    assert response.status_code == 302, response.context["errors"] if response.context else ""
    assert PermissionCache.objects.get(user=user).roles == ["auditor"]
    assert UserRole.objects.get(user=user).expires_at is not None
    assigned = AuditLog.objects.get(event_type="role.assigned", actor_id=actor.pk)
    assert assigned.user_id == user.pk
    assert AuditLog.objects.filter(event_type="role.revoked", actor_id=actor.pk).exists()


def test_the_permission_cache_is_read_only_in_the_admin(admin_client):
    client = admin_client
    user = UserFactory()
    assert client.get("/admin/permissions_app/permissioncache/").status_code == 200
    change = client.post(
        f"/admin/permissions_app/permissioncache/{user.pk}/change/", {"permissions": "*"}
    )
    assert change.status_code in (302, 403)
    assert PermissionCache.objects.get(user=user).permissions == ["profile:read", "profile:write"]
