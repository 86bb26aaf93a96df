"""Roles and assignments: every change is audited and the cache is right in the same transaction."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit_app.models import AuditLog
from auth_app.models import User
from auth_app.tests.factories import UserFactory
from permissions_app import selectors, services
from permissions_app.errors import (
    AssignmentNotFound,
    RoleInUse,
    RoleNameTaken,
    SystemRole,
    UnknownPermission,
)
from permissions_app.models import PermissionCache, Role, UserRole
from permissions_app.tests.factories import RoleFactory
from sv_sdk.errors import ValidationFailed
from tests.support import user_with

pytestmark = pytest.mark.django_db


def cached(user) -> list[str]:
    return PermissionCache.objects.get(user=user).permissions


def fresh(user) -> User:
    """The user as the API's authentication loads it: with the cache row joined."""
    return User.objects.select_related("permission_cache").get(pk=user.pk)


def test_a_role_holds_only_catalogue_permissions_and_wildcards():
    role = services.role_create(name="ops", permissions=["users:*", "audit:read", "audit:read"])
    assert role.permissions == ["audit:read", "users:*"]
    assert services.role_create(name="root", permissions=["*"]).permissions == ["*"]

    for bad in (["users:fly"], ["nothing:*"], ["users"], [""]):
        with pytest.raises(UnknownPermission):
            services.role_create(name="bad", permissions=bad)
    assert not Role.objects.filter(name="bad").exists()


def test_creating_a_role_is_audited_and_a_duplicate_name_is_refused():
    role = services.role_create(name="support", permissions=["users:read"])
    event = AuditLog.objects.get(event_type="role.created")
    assert event.target_id == role.pk
    assert event.metadata == {"role": "support", "permissions": ["users:read"]}

    with pytest.raises(RoleNameTaken):
        services.role_create(name="support")
    with pytest.raises(ValidationFailed):
        services.role_create(name="not a slug")


def test_granting_a_role_updates_the_cache_and_records_role_assigned():
    user, actor = UserFactory(), user_with("users:read")
    role = RoleFactory(permissions=["users:read"])

    assignment = services.role_grant(user=user, role=role, granted_by=actor)

    assert not assignment.renewed
    assert "users:read" in cached(user)
    assert selectors.user_has_permission(fresh(user), "users:read")
    event = AuditLog.objects.filter(event_type="role.assigned", target_id=role.pk).get()
    assert (event.actor_id, event.user_id) == (actor.pk, user.pk)


def test_granting_a_held_role_again_renews_its_expiry(clock):
    user, role = UserFactory(), RoleFactory(permissions=["users:read"])
    services.role_grant(user=user, role=role, expires_at=clock.now + timedelta(hours=1))

    again = services.role_grant(user=user, role=role, expires_at=None)

    assert again.renewed
    assert UserRole.objects.get(user=user, role=role).expires_at is None
    assert PermissionCache.objects.get(user=user).valid_until is None


def test_a_grant_that_has_already_expired_is_refused(clock):
    user, role = UserFactory(), RoleFactory()
    with pytest.raises(ValidationFailed):
        services.role_grant(user=user, role=role, expires_at=clock.now - timedelta(seconds=1))
    assert not UserRole.objects.filter(role=role).exists()


def test_revoking_a_role_removes_its_permissions_at_once():
    user, role = UserFactory(), RoleFactory(permissions=["users:read"])
    services.role_grant(user=user, role=role)
    assert selectors.user_has_permission(user, "users:read")  # memoised on the object

    services.role_revoke(user=user, role=role)

    assert not selectors.user_has_permission(user, "users:read")
    assert "users:read" not in cached(user)
    assert AuditLog.objects.filter(event_type="role.revoked", user_id=user.pk).exists()
    with pytest.raises(AssignmentNotFound):
        services.role_revoke(user=user, role=role)


def test_an_expired_assignment_stops_counting_at_its_expiry_without_any_write(clock):
    user, role = UserFactory(), RoleFactory(permissions=["audit:read"])
    services.role_grant(user=user, role=role, expires_at=clock.now + timedelta(hours=1))
    assert selectors.user_has_permission(fresh(user), "audit:read")

    clock.advance(hours=1)
    loaded = fresh(user)
    with CaptureQueriesContext(connection) as queries:
        assert not selectors.user_has_permission(loaded, "audit:read")
        assert selectors.user_has_permission(loaded, "profile:read")
    assert len(queries) == 1
    assert queries[0]["sql"].lstrip().upper().startswith("SELECT")
    assert "audit:read" in cached(user)  # the stale row is left alone, never trusted


def test_editing_a_role_updates_every_holder_with_the_same_number_of_statements():
    def edit_cost(holders: int) -> int:
        role = RoleFactory(permissions=["users:read"])
        users = [UserFactory() for _ in range(holders)]
        for user in users:
            services.role_grant(user=user, role=role)
        with CaptureQueriesContext(connection) as queries:
            services.role_update(role=role, permissions=["users:read", "email:read"])
        assert all("email:read" in cached(user) for user in users)
        return len(queries)

    assert edit_cost(2) == edit_cost(12)


def test_renaming_a_role_renames_it_in_holders_caches_and_is_audited():
    user, role = UserFactory(), RoleFactory(name="helpdesk")
    services.role_grant(user=user, role=role)

    services.role_update(role=role, name="support", description="Answers tickets")

    assert PermissionCache.objects.get(user=user).roles == ["support", "user"]
    change = AuditLog.objects.get(event_type="role.updated").metadata["changes"]
    assert change["name"] == {"from": "helpdesk", "to": "support"}


def test_system_roles_keep_their_names_and_cannot_be_deleted_even_by_force():
    auditor = Role.objects.get(name="auditor")
    with pytest.raises(SystemRole):
        services.role_update(role=auditor, name="auditors")
    with pytest.raises(SystemRole):
        services.role_delete(role=auditor, force=True)
    services.role_update(role=auditor, description="Reads the log")
    assert Role.objects.get(name="auditor").description == "Reads the log"


def test_a_role_someone_holds_is_deleted_only_by_force_which_revokes_it():
    user, role = UserFactory(), RoleFactory(permissions=["email:read"])
    services.role_grant(user=user, role=role)

    with pytest.raises(RoleInUse):
        services.role_delete(role=role)
    assert Role.objects.filter(pk=role.pk).exists()

    services.role_delete(role=role, force=True)

    assert not Role.objects.filter(pk=role.pk).exists()
    assert "email:read" not in cached(user)
    event = AuditLog.objects.get(event_type="role.deleted")
    assert event.metadata["revoked_from"] == 1


def test_a_role_held_only_by_expired_assignments_can_be_deleted(clock):
    user, role = UserFactory(), RoleFactory(permissions=["email:read"])
    services.role_grant(user=user, role=role, expires_at=clock.now + timedelta(minutes=5))
    clock.advance(minutes=10)

    services.role_delete(role=role)

    assert not UserRole.objects.filter(role=role).exists()


def test_superusers_hold_every_permission():
    root = UserFactory(is_superuser=True)
    assert selectors.permissions_for_user(root) == {"*"}
    assert selectors.user_has_permission(root, "roles:write")
    assert cached(root) == ["*"]


def test_inactive_users_hold_nothing():
    user = UserFactory(is_superuser=True)
    user.is_active = False
    assert not selectors.user_has_permission(user, "users:read")


def test_a_warm_permission_check_costs_no_query():
    user = fresh(UserFactory())
    with CaptureQueriesContext(connection) as queries:
        for _ in range(100):
            selectors.user_has_permission(user, "profile:read")
            selectors.user_has_permission(user, "users:delete")
    assert len(queries) == 0


def test_a_user_loaded_without_the_cache_costs_one_query_once():
    user = User.objects.get(pk=UserFactory().pk)
    with CaptureQueriesContext(connection) as queries:
        for _ in range(10):
            selectors.user_has_permission(user, "profile:read")
    assert len(queries) == 1


def test_wildcards_cover_every_action_of_their_resource():
    assert selectors.permission_matches("users:*", "users:delete")
    assert not selectors.permission_matches("users:*", "usersx:read")
    assert not selectors.permission_matches("users:read", "users:write")
    assert selectors.permission_matches("*", "email:send")


def test_repair_rewrites_rows_that_disagree_and_reports_them():
    user, other = UserFactory(), UserFactory()
    PermissionCache.objects.filter(user=user).update(permissions=["*"])
    PermissionCache.objects.filter(user=other).delete()

    fixes = services.permission_cache_repair(user_ids=[user.pk, other.pk])

    assert {(fix.user_id, fix.missing) for fix in fixes} == {(user.pk, False), (other.pk, True)}
    assert cached(user) == ["profile:read", "profile:write"]
    assert cached(other) == ["profile:read", "profile:write"]
    assert services.permission_cache_repair(user_ids=[user.pk, other.pk]) == []
