"""Issue 15, classes 1 and 2, and issue 24's system-role core, through every write path.

Class 1 (the privilege rule): an actor changes, bans, deactivates, deletes,
demotes or revokes a user, or edits a role, only when holding every permission
the target holds; superusers only for superusers and system roles. Class 2:
nobody grants or renews roles on themselves, and no grant outlasts the
granter's own hold of its permissions. Each path is tried refused and allowed:
the API, the admin's forms and actions, and the commands.
"""

import io
import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.utils import timezone

from audit_app.models import AuditLog
from auth_app.models import Session, User
from auth_app.services import session_create
from auth_app.tests.factories import UserFactory
from email_app.models import EmailSend
from permissions_app import services
from permissions_app.errors import PrivilegeExceeded
from permissions_app.models import PermissionCache, Role, UserRole
from permissions_app.tests.factories import RoleFactory
from platform_app.flows import user_onboard
from tests.support import assert_problem, bearer_client, user_with

pytestmark = pytest.mark.django_db

USERS = "/admin/auth_app/user/"
ROLES = "/admin/permissions_app/role/"
ASSIGNMENTS = "/admin/permissions_app/userrole/"


def role(name: str) -> Role:
    return Role.objects.get(name=name)


def staff_client(*permissions: str, superuser: bool = False) -> tuple[Client, User]:
    user = user_with(*permissions, is_staff=True, is_superuser=superuser)
    client = Client()
    client.force_login(user)
    return client, user


def admin_holder() -> User:
    """A user who is not a superuser but holds the admin role (`*`)."""
    holder = UserFactory()
    services.role_grant(user=holder, role=role("admin"))
    return holder


def page_text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def users_action(client: Client, name: str, users, **extra):
    data = {"action": name, "_selected_action": [u.pk for u in users], **extra}
    return client.post(USERS, data, follow=True)


def change_form(client: Client, user: User, **changes) -> dict:
    """The user's change form as the page fills it, with `changes` applied."""
    page = client.get(f"{USERS}{user.pk}/change/")
    form = page.context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value not in (None, False)}
    data.update(changes)
    data = {k: ("on" if v is True else v) for k, v in data.items() if v not in ("", False)}
    for formset in page.context["inline_admin_formsets"]:
        prefix = formset.formset.prefix
        data[f"{prefix}-TOTAL_FORMS"] = data[f"{prefix}-INITIAL_FORMS"] = "0"
    return data


def command(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


# Class 1 through the API --------------------------------------------------------------------


def test_privilege_api_a_role_operator_cannot_revoke_admin_from_its_holder():
    operator = user_with("roles:read", "roles:write", "roles:assign")
    holder = admin_holder()
    admin = role("admin")

    response = bearer_client(operator).delete(f"/api/v1/users/{holder.pk}/roles/{admin.pk}")

    assert_problem(response, 403, "privilege_exceeded")
    assert UserRole.objects.filter(user=holder, role=admin).exists()
    assert "*" in PermissionCache.objects.get(user=holder).permissions


def test_privilege_api_revoking_works_for_someone_holding_all_the_targets_permissions():
    operator = user_with("roles:read", "roles:assign", "audit:read", "audit:export")
    auditor = UserFactory()
    services.role_grant(user=auditor, role=role("auditor"))

    response = bearer_client(operator).delete(
        f"/api/v1/users/{auditor.pk}/roles/{role('auditor').pk}"
    )

    assert response.status_code == 204
    revoked = AuditLog.objects.get(event_type="role.revoked", user_id=auditor.pk)
    assert revoked.actor_id == operator.pk


def test_privilege_api_only_superusers_edit_system_roles():
    operator = user_with("roles:*")
    client = bearer_client(operator)

    shrink = client.patch(
        f"/api/v1/roles/{role('admin').pk}", {"permissions": ["roles:read"]}, format="json"
    )
    grow = client.patch(
        f"/api/v1/roles/{role('user').pk}",
        {"permissions": ["profile:read", "profile:write", "roles:assign"]},
        format="json",
    )

    assert_problem(shrink, 403, "privilege_exceeded")
    assert_problem(grow, 403, "privilege_exceeded")
    assert role("admin").permissions == ["*"]
    assert role("user").permissions == ["profile:read", "profile:write"]


def test_privilege_api_users_write_cannot_deactivate_or_delete_an_admin_role_holder():
    client = bearer_client(user_with("users:read", "users:write", "users:delete"))
    holder = admin_holder()
    session_create(user=holder)

    patch = client.patch(f"/api/v1/users/{holder.pk}", {"is_active": False}, format="json")
    delete = client.delete(f"/api/v1/users/{holder.pk}")

    assert_problem(patch, 403, "privilege_exceeded")
    assert_problem(delete, 403, "privilege_exceeded")
    holder.refresh_from_db()
    assert holder.is_active and Session.objects.filter(user=holder).exists()


def test_privilege_api_a_peer_holding_everything_the_target_holds_may_deactivate_them():
    client = bearer_client(user_with("users:read", "users:write"))
    peer = user_with("users:read")

    response = client.patch(f"/api/v1/users/{peer.pk}", {"is_active": False}, format="json")

    assert response.status_code == 200, response.content
    assert not User.objects.get(pk=peer.pk).is_active


def test_privilege_api_a_superuser_target_needs_a_superuser_even_against_the_admin_role():
    client = bearer_client(admin_holder())  # holds `*`, but is not a superuser
    root = UserFactory(is_superuser=True)

    response = client.patch(f"/api/v1/users/{root.pk}", {"name": "Owned"}, format="json")

    assert_problem(response, 403, "privilege_exceeded")
    assert User.objects.get(pk=root.pk).name != "Owned"


# Class 1 through the admin -------------------------------------------------------------------


def test_privilege_admin_form_cannot_change_a_superusers_email():
    client, _ = staff_client("users:read", "users:write")
    root = UserFactory(is_superuser=True, is_staff=True)

    page = client.get(f"{USERS}{root.pk}/change/")
    response = client.post(
        f"{USERS}{root.pk}/change/",
        {"email": "mallory@evil.test", "name": root.name, "is_active": "on", "is_staff": "on"},
    )

    assert page.status_code == 200 and 'name="email"' not in page.content.decode()
    assert response.status_code == 403
    assert User.objects.get(pk=root.pk).email == root.email


def test_privilege_admin_form_cannot_delete_an_admin_role_holder():
    client, _ = staff_client("users:read", "users:write", "users:delete")
    holder = admin_holder()

    response = client.post(f"{USERS}{holder.pk}/delete/", {"post": "yes"})

    assert response.status_code == 403
    assert User.objects.filter(pk=holder.pk).exists()


def test_privilege_admin_action_cannot_ban_a_superuser_and_bans_nobody_of_the_selection():
    client, _ = staff_client("users:read", "users:write")
    root = UserFactory(is_superuser=True)
    ada = UserFactory()
    session_create(user=root)

    response = users_action(client, "ban_users", [ada, root], apply="Ban", duration="7d")

    assert "Nothing was changed: Only a superuser can act on a superuser." in page_text(response)
    assert User.objects.filter(pk__in=[ada.pk, root.pk], banned_until__isnull=False).count() == 0
    assert Session.objects.filter(user=root).exists()


def test_privilege_admin_action_bans_and_unbans_those_the_actor_may_act_on():
    client, actor = staff_client("users:read", "users:write")
    ada = UserFactory()

    banned = users_action(client, "ban_users", [ada], apply="Ban", duration="1d")
    assert "Banned 1 user(s)." in page_text(banned)
    assert User.objects.get(pk=ada.pk).banned_until is not None

    lifted = users_action(client, "unban_users", [ada])
    assert "Lifted the ban of 1 user(s)." in page_text(lifted)
    assert User.objects.get(pk=ada.pk).banned_until is None
    assert AuditLog.objects.filter(event_type="user.updated", actor_id=actor.pk).count() == 2


def test_privilege_admin_role_form_refuses_a_system_role_to_non_superusers():
    client, _ = staff_client("roles:*")
    admin = role("admin")

    response = client.post(
        f"{ROLES}{admin.pk}/change/",
        {"name": "admin", "description": "", "permissions": ["roles:read"]},
    )

    assert response.status_code == 200
    assert "Only a superuser can change a system role." in page_text(response)
    assert role("admin").permissions == ["*"]


def test_privilege_admin_role_form_refuses_a_role_whose_permissions_the_actor_lacks():
    client, _ = staff_client("roles:*", "users:read")
    support = RoleFactory(permissions=["users:read", "audit:read"])

    response = client.post(
        f"{ROLES}{support.pk}/change/",
        {"name": support.name, "description": "", "permissions": ["users:read"]},
    )
    deleted = client.post(f"{ROLES}{support.pk}/delete/", {"post": "yes"})

    assert "permissions you do not hold yourself" in page_text(response)
    assert deleted.status_code == 403
    assert Role.objects.get(pk=support.pk).permissions == ["audit:read", "users:read"]


def test_privilege_admin_cannot_delete_the_admin_assignment_of_its_holder():
    client, _ = staff_client("roles:*")
    holder = admin_holder()
    assignment = UserRole.objects.get(user=holder, role=role("admin"))

    response = client.post(f"{ASSIGNMENTS}{assignment.pk}/delete/", {"post": "yes"})

    assert response.status_code == 403
    assert UserRole.objects.filter(pk=assignment.pk).exists()


def test_privilege_admin_email_change_unverifies_notifies_both_addresses_and_ends_sessions():
    client, root = staff_client(superuser=True)
    ada = user_onboard(email="ada@example.com", name="Ada")
    User.objects.filter(pk=ada.pk).update(email_verified=True)
    session_create(user=ada)

    data = change_form(client, ada, email="ada@new.example.com", email_verified=True)
    response = client.post(f"{USERS}{ada.pk}/change/", data)

    assert response.status_code == 302, page_text(response)[:2000]
    ada.refresh_from_db()
    assert ada.email == "ada@new.example.com" and not ada.email_verified
    notice = EmailSend.objects.get(template__key="email-changed")
    assert notice.to_email == "ada@example.com" and "ada@new.example.com" in notice.text_body
    verify = EmailSend.objects.filter(template__key="verify-email").latest("created_at")
    assert verify.to_email == "ada@new.example.com"
    assert not Session.objects.filter(user=ada).exists()
    updated = AuditLog.objects.get(event_type="user.updated", user_id=ada.pk)
    assert updated.actor_id == root.pk and updated.metadata["fields"] == ["email", "email_verified"]
    ended = AuditLog.objects.get(event_type="session.revoked", user_id=ada.pk)
    assert ended.metadata["reason"] == "email_changed"


def test_privilege_an_email_change_to_a_taken_address_changes_nothing():
    client, _ = staff_client(superuser=True)
    ada, bob = UserFactory(), UserFactory()

    data = change_form(client, ada, email=bob.email.upper())
    response = client.post(f"{USERS}{ada.pk}/change/", data)

    assert response.status_code == 200 and "already exists" in page_text(response)
    assert User.objects.get(pk=ada.pk).email == ada.email
    assert not EmailSend.objects.filter(template__key="email-changed").exists()


def test_privilege_admin_making_a_superuser_goes_through_the_flow_and_refreshes_the_cache():
    client, root = staff_client(superuser=True)
    other = UserFactory(is_staff=True)

    data = change_form(client, other, is_superuser=True)
    response = client.post(f"{USERS}{other.pk}/change/", data)

    assert response.status_code == 302, page_text(response)[:2000]
    assert PermissionCache.objects.get(user=other).permissions == ["*"]
    updated = AuditLog.objects.get(event_type="user.updated", user_id=other.pk)
    assert updated.actor_id == root.pk and updated.metadata["fields"] == ["is_superuser"]


# Class 1 through the commands ------------------------------------------------------------------


def test_privilege_command_with_an_actor_refuses_to_revoke_from_a_superior():
    operator = user_with("roles:*")
    holder = admin_holder()

    with pytest.raises(CommandError, match="permissions you all hold"):
        command("revoke_role", holder.email, "admin", "--actor", operator.email)

    assert UserRole.objects.filter(user=holder, role__name="admin").exists()


def test_privilege_command_with_an_actor_acts_as_them_when_allowed():
    root = UserFactory(is_superuser=True)
    holder = admin_holder()

    output = command("revoke_role", holder.email, "admin", "--actor", root.email)

    assert "Revoked role admin" in output
    assert AuditLog.objects.get(event_type="role.revoked", user_id=holder.pk).actor_id == root.pk


def test_privilege_command_create_role_grants_only_what_the_actor_holds():
    operator = user_with("roles:write", "users:read")

    with pytest.raises(CommandError, match="do not hold yourself"):
        command("create_role", "support", "-p", "users:delete", "--actor", operator.email)
    command("create_role", "support", "-p", "users:read", "--actor", operator.email)

    assert Role.objects.get(name="support").permissions == ["users:read"]


def test_privilege_commands_without_an_actor_run_as_the_system():
    holder = admin_holder()

    command("revoke_role", holder.email, "admin")

    assert AuditLog.objects.get(event_type="role.revoked", user_id=holder.pk).actor_id is None


def test_privilege_only_a_superuser_onboards_a_superuser():
    with pytest.raises(PrivilegeExceeded):
        user_onboard(email="sneaky@example.com", is_superuser=True, actor=admin_holder())
    assert not User.objects.filter(email="sneaky@example.com").exists()


# Class 2: time-limited grants ------------------------------------------------------------------


@pytest.fixture
def rolemgr():
    return RoleFactory(name="rolemgr", permissions=["roles:read", "roles:assign"])


def temporary_holder(role: Role, minutes: int = 30) -> User:
    holder = UserFactory()
    until = timezone.now() + timedelta(minutes=minutes)
    services.role_grant(user=holder, role=role, expires_at=until)
    return holder


def test_time_limited_grant_cannot_be_renewed_by_its_holder_through_the_api(rolemgr):
    holder = temporary_holder(rolemgr)
    before = UserRole.objects.get(user=holder, role=rolemgr).expires_at

    response = bearer_client(holder).post(
        f"/api/v1/users/{holder.pk}/roles", {"role": "rolemgr", "expires_at": None}, format="json"
    )

    assert_problem(response, 403, "privilege_exceeded")
    assert response.json()["detail"] == "Nobody grants or renews roles on themselves."
    assert UserRole.objects.get(user=holder, role=rolemgr).expires_at == before


def test_time_limited_grant_cannot_be_handed_on_for_longer_than_its_holder_has_it(rolemgr):
    holder = temporary_holder(rolemgr, minutes=30)
    puppet = UserFactory()
    client = bearer_client(holder)
    url = f"/api/v1/users/{puppet.pk}/roles"

    forever = client.post(url, {"role": "rolemgr", "expires_at": None}, format="json")
    later = timezone.now() + timedelta(days=1)
    longer = client.post(url, {"role": "rolemgr", "expires_at": later.isoformat()}, format="json")
    within = timezone.now() + timedelta(minutes=10)
    allowed = client.post(url, {"role": "rolemgr", "expires_at": within.isoformat()}, format="json")

    assert_problem(forever, 403, "privilege_exceeded")
    assert_problem(longer, 403, "privilege_exceeded")
    assert allowed.status_code == 201, allowed.content
    # ...and the puppet cannot lengthen the holder's grant either: it lasts as long as theirs.
    renew = bearer_client(puppet).post(
        f"/api/v1/users/{holder.pk}/roles", {"role": "rolemgr", "expires_at": None}, format="json"
    )
    assert_problem(renew, 403, "privilege_exceeded")


def test_time_limited_grant_renewal_by_a_permanent_holder_is_allowed(rolemgr):
    holder = temporary_holder(rolemgr)
    manager = user_with("roles:read", "roles:assign")

    response = bearer_client(manager).post(
        f"/api/v1/users/{holder.pk}/roles", {"role": "rolemgr", "expires_at": None}, format="json"
    )

    assert response.status_code == 200, response.content
    assert UserRole.objects.get(user=holder, role=rolemgr).expires_at is None


def test_time_limited_grant_self_renewal_is_refused_in_the_admin_form_and_action(rolemgr):
    client, holder = staff_client("users:read", "users:write")
    services.role_grant(
        user=holder, role=rolemgr, expires_at=timezone.now() + timedelta(minutes=30)
    )
    assignment = UserRole.objects.get(user=holder, role=rolemgr)

    form = client.post(
        f"{ASSIGNMENTS}{assignment.pk}/change/", {"expires_at_0": "", "expires_at_1": ""}
    )
    action = users_action(client, "grant_role", [holder], apply="Grant", role=rolemgr.pk)

    assert "Nobody grants or renews roles on themselves." in page_text(form)
    assert "Nobody grants or renews roles on themselves." in page_text(action)
    assert UserRole.objects.get(pk=assignment.pk).expires_at == assignment.expires_at


def test_time_limited_grant_cannot_be_extended_on_ones_own_user_page(rolemgr):
    client, holder = staff_client("users:read", "users:write", "roles:read")
    services.role_grant(
        user=holder, role=rolemgr, expires_at=timezone.now() + timedelta(minutes=30)
    )
    assignment = UserRole.objects.get(user=holder, role=rolemgr)
    data = change_form(client, holder)
    data.update(
        {
            "user_roles-TOTAL_FORMS": "1",
            "user_roles-INITIAL_FORMS": "1",
            "user_roles-0-id": assignment.pk,
            "user_roles-0-user": holder.pk,
            "user_roles-0-role": rolemgr.pk,
        }
    )

    response = client.post(f"{USERS}{holder.pk}/change/", data)

    assert response.status_code == 200
    assert "Nobody grants or renews roles on themselves." in page_text(response)
    assert UserRole.objects.get(pk=assignment.pk).expires_at == assignment.expires_at


def test_time_limited_grant_self_grant_is_refused_by_the_command(rolemgr):
    holder = temporary_holder(rolemgr)

    with pytest.raises(CommandError, match="Nobody grants or renews roles on themselves"):
        command("grant_role", holder.email, "rolemgr", "--actor", holder.email)

    assert UserRole.objects.get(user=holder, role=rolemgr).expires_at is not None


# Issue 24: system roles keep their core ------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "permissions"),
    [
        ("admin", []),
        ("user", ["profile:read"]),
        ("auditor", ["audit:read"]),
    ],
)
def test_system_role_core_cannot_be_removed_even_by_a_superuser(name, permissions):
    client = bearer_client(UserFactory(is_superuser=True))
    before = role(name).permissions

    response = client.patch(
        f"/api/v1/roles/{role(name).pk}", {"permissions": permissions}, format="json"
    )

    assert_problem(response, 409, "system_role")
    assert role(name).permissions == before


def test_system_role_core_stays_while_a_superuser_adds_to_it():
    client = bearer_client(UserFactory(is_superuser=True))

    response = client.patch(
        f"/api/v1/roles/{role('auditor').pk}",
        {"permissions": ["audit:read", "audit:export", "email:read"]},
        format="json",
    )

    assert response.status_code == 200, response.content
    assert role("auditor").permissions == ["audit:export", "audit:read", "email:read"]


def test_system_role_core_is_kept_by_the_admin_form():
    client, _ = staff_client(superuser=True)

    response = client.post(
        f"{ROLES}{role('user').pk}/change/",
        {"name": "user", "description": "", "permissions": ["profile:read"]},
    )

    assert "The system role user keeps profile:write." in page_text(response)
    assert role("user").permissions == ["profile:read", "profile:write"]
