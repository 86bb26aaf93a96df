"""The roles, assignments, users and own-permissions API: success, 401, 403, 404 and bad input."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from audit_app.models import AuditLog
from auth_app.models import Session, User
from auth_app.tests.factories import UserFactory
from permissions_app import services
from permissions_app.models import PermissionCache, Role, UserRole
from permissions_app.tests.factories import RoleFactory
from sv_sdk.api.serializers import utc_text
from tests.support import assert_problem, bearer_client

pytestmark = pytest.mark.django_db


PROTECTED = [
    ("get", "/api/v1/roles", "roles:read"),
    ("post", "/api/v1/roles", "roles:write"),
    ("get", "/api/v1/roles/{role}", "roles:read"),
    ("patch", "/api/v1/roles/{role}", "roles:write"),
    ("delete", "/api/v1/roles/{role}", "roles:write"),
    ("get", "/api/v1/users/{user}/roles", "roles:read"),
    ("post", "/api/v1/users/{user}/roles", "roles:assign"),
    ("delete", "/api/v1/users/{user}/roles/{role}", "roles:assign"),
    ("get", "/api/v1/users", "users:read"),
    ("post", "/api/v1/users", "users:write"),
    ("get", "/api/v1/users/{user}", "users:read"),
    ("patch", "/api/v1/users/{user}", "users:write"),
    ("delete", "/api/v1/users/{user}", "users:delete"),
]


@pytest.mark.parametrize(("method", "path", "permission"), PROTECTED)
def test_every_endpoint_answers_401_without_a_session_and_403_without_its_permission(
    api, method, path, permission
):
    role, user = RoleFactory(), UserFactory()
    url = path.format(role=role.pk, user=user.pk)

    assert_problem(getattr(APIClient(), method)(url, {}, format="json"), 401, "not_authenticated")
    client, _ = api("profile:read")
    body = assert_problem(getattr(client, method)(url, {}, format="json"), 403, "permission_denied")
    assert permission in body["detail"]


@pytest.mark.parametrize(("method", "path", "permission"), PROTECTED)
def test_a_wildcard_of_the_resource_is_enough_for_every_endpoint(api, method, path, permission):
    role, user = RoleFactory(), UserFactory()
    client, _ = api(permission.split(":")[0] + ":*")
    response = getattr(client, method)(path.format(role=role.pk, user=user.pk), {}, format="json")
    assert response.status_code not in (401, 403), response.content


# Roles


def test_roles_are_listed_by_name_with_their_permissions(api):
    client, _ = api("roles:read")
    body = client.get("/api/v1/roles").json()
    names = [role["name"] for role in body["results"]]
    assert names == sorted(names) and {"admin", "auditor", "user"} <= set(names)
    auditor = next(r for r in body["results"] if r["name"] == "auditor")
    assert set(auditor["permissions"]) == {"audit:export", "audit:read"} and auditor["is_system"]


def test_creating_a_role_validates_permissions_against_the_catalogue(api):
    client, actor = api("roles:write", "users:*")

    response = client.post(
        "/api/v1/roles",
        {"name": "support", "description": "Help desk", "permissions": ["users:read"]},
        format="json",
    )

    assert response.status_code == 201, response.content
    assert response.json()["permissions"] == ["users:read"]
    assert AuditLog.objects.filter(event_type="role.created", actor_id=actor.pk).exists()
    bad = client.post("/api/v1/roles", {"name": "x", "permissions": ["users:fly"]}, format="json")
    assert "permissions" in assert_problem(bad, 400, "unknown_permission")["errors"]
    taken = client.post("/api/v1/roles", {"name": "support"}, format="json")
    assert_problem(taken, 409, "role_name_taken")
    invalid = client.post("/api/v1/roles", {"name": "a b", "colour": 1}, format="json")
    assert set(assert_problem(invalid, 400, "validation_error")["errors"]) == {"colour"}
    assert_problem(
        client.post("/api/v1/roles", {"name": "a b"}, format="json"), 400, "validation_error"
    )


def test_nobody_hands_out_permissions_they_do_not_hold(api):
    client, _ = api("roles:write", "roles:assign")
    response = client.post("/api/v1/roles", {"name": "root", "permissions": ["*"]}, format="json")
    assert_problem(response, 403, "privilege_exceeded")
    mine = RoleFactory(permissions=["roles:read"])
    patch = client.patch(f"/api/v1/roles/{mine.pk}", {"permissions": ["*"]}, format="json")
    assert_problem(patch, 403, "privilege_exceeded")
    grant = client.post(f"/api/v1/users/{UserFactory().pk}/roles", {"role": "admin"}, format="json")
    assert_problem(grant, 403, "privilege_exceeded")
    assert Role.objects.get(pk=mine.pk).permissions == ["roles:read"]


def test_editing_a_role_changes_its_holders_permissions_at_once(api):
    client, _ = api("roles:write", "email:*")
    holder = UserFactory()
    role = RoleFactory(permissions=["email:read"])
    services.role_grant(user=holder, role=role)

    response = client.patch(
        f"/api/v1/roles/{role.pk}", {"permissions": ["email:read", "email:send"]}, format="json"
    )

    assert response.status_code == 200, response.content
    assert "email:send" in PermissionCache.objects.get(user=holder).permissions
    assert_problem(client.patch("/api/v1/roles/nope", {}, format="json"), 404, "not_found")
    system = Role.objects.get(name="user")
    assert_problem(
        client.patch(f"/api/v1/roles/{system.pk}", {"name": "member"}, format="json"),
        403,
        "privilege_exceeded",
    )


def test_deleting_an_assigned_role_needs_force(api):
    client, _ = api("roles:write")
    role = RoleFactory()
    services.role_grant(user=UserFactory(), role=role)

    assert_problem(client.delete(f"/api/v1/roles/{role.pk}"), 409, "role_in_use")
    assert_problem(client.delete(f"/api/v1/roles/{role.pk}?force=maybe"), 400, "validation_error")
    assert client.delete(f"/api/v1/roles/{role.pk}?force=true").status_code == 204
    assert not Role.objects.filter(pk=role.pk).exists()
    assert_problem(client.delete(f"/api/v1/roles/{role.pk}"), 404, "not_found")
    admin = Role.objects.get(name="admin")
    assert_problem(client.delete(f"/api/v1/roles/{admin.pk}?force=1"), 409, "system_role")


def test_a_role_is_read_by_id(api):
    client, _ = api("roles:read")
    role = RoleFactory(permissions=["users:read"])
    assert client.get(f"/api/v1/roles/{role.pk}").json()["name"] == role.name
    assert_problem(client.get("/api/v1/roles/missing"), 404, "not_found")


# Assignments


def test_granting_listing_and_revoking_a_users_role(api):
    client, actor = api("roles:read", "roles:assign", "audit:*")
    user = UserFactory()
    expires = (timezone.now() + timedelta(days=1)).isoformat()

    granted = client.post(
        f"/api/v1/users/{user.pk}/roles", {"role": "auditor", "expires_at": expires}, format="json"
    )
    assert granted.status_code == 201, granted.content
    assert granted.json()["role"]["name"] == "auditor"
    renewed = client.post(f"/api/v1/users/{user.pk}/roles", {"role": "auditor"}, format="json")
    assert renewed.status_code == 200 and renewed.json()["expires_at"] is None

    listed = client.get(f"/api/v1/users/{user.pk}/roles").json()["results"]
    assert [a["role"]["name"] for a in listed] == ["auditor", "user"]
    auditor = Role.objects.get(name="auditor")
    assert client.delete(f"/api/v1/users/{user.pk}/roles/{auditor.pk}").status_code == 204
    assert PermissionCache.objects.get(user=user).roles == ["user"]
    assert AuditLog.objects.filter(event_type="role.revoked", actor_id=actor.pk).exists()
    gone = client.delete(f"/api/v1/users/{user.pk}/roles/{auditor.pk}")
    assert_problem(gone, 404, "not_found")


def test_granting_rejects_unknown_users_roles_and_past_expiries(api):
    client, _ = api("roles:assign", "audit:*")
    user = UserFactory()
    url = f"/api/v1/users/{user.pk}/roles"
    assert_problem(client.post("/api/v1/users/nobody/roles", {"role": "auditor"}), 404, "not_found")
    unknown = assert_problem(
        client.post(url, {"role": "nope"}, format="json"), 400, "validation_error"
    )
    assert "role" in unknown["errors"]
    past = (timezone.now() - timedelta(minutes=1)).isoformat()
    expired = client.post(url, {"role": "auditor", "expires_at": past}, format="json")
    assert "expires_at" in assert_problem(expired, 400, "validation_error")["errors"]
    garbled = client.post(url, {"role": "auditor", "expires_at": "soon"}, format="json")
    assert_problem(garbled, 400, "validation_error")
    assert_problem(client.post(url, "[1, 2", content_type="application/json"), 400, "invalid_json")


def test_revoking_from_an_unknown_user_or_role_is_404(api):
    client, _ = api("roles:assign")
    role, user = RoleFactory(), UserFactory()
    assert_problem(client.delete(f"/api/v1/users/nobody/roles/{role.pk}"), 404, "not_found")
    assert_problem(client.delete(f"/api/v1/users/{user.pk}/roles/nope"), 404, "not_found")


# Own permissions


def test_me_permissions_shows_effective_permissions_and_roles(api):
    client, _ = api("audit:read")
    body = client.get("/api/v1/auth/me/permissions").json()
    assert body["permissions"] == ["audit:read", "profile:read", "profile:write"]
    assert len(body["roles"]) == 2 and "user" in body["roles"]
    assert_problem(APIClient().get("/api/v1/auth/me/permissions"), 401, "not_authenticated")
    root = bearer_client(UserFactory(is_superuser=True))
    assert root.get("/api/v1/auth/me/permissions").json()["permissions"] == ["*"]


def test_a_role_expiring_mid_session_stops_counting_at_once(api, clock):
    client, user = api("users:read")
    role = Role.objects.get(name="auditor")
    services.role_grant(user=user, role=role, expires_at=clock.now + timedelta(minutes=5))
    assert client.get("/api/v1/auth/me/permissions").json()["valid_until"] is not None
    assert client.get("/api/v1/users").status_code == 200

    clock.advance(minutes=6)

    body = client.get("/api/v1/auth/me/permissions").json()
    assert "audit:read" not in body["permissions"] and "auditor" not in body["roles"]


# Query counts


def test_a_permission_protected_request_costs_at_most_two_queries(api):
    client, _ = api("users:read", "roles:read")
    for _ in range(5):
        services.role_grant(user=UserFactory(), role=Role.objects.get(name="auditor"))
    role = Role.objects.get(name="auditor")

    for url in ("/api/v1/users", "/api/v1/users?role=auditor", f"/api/v1/roles/{role.pk}"):
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        assert response.status_code == 200
        assert len(queries) <= 2, [q["sql"] for q in queries]


def test_me_permissions_costs_only_the_authentication_query(api):
    client, _ = api("users:read")
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/api/v1/auth/me/permissions").status_code == 200
    assert len(queries) == 1


# Users


def test_the_user_list_carries_each_users_roles_and_filters_by_role(api):
    client, _ = api("users:read")
    auditor = UserFactory(email="auditor@example.com")
    services.role_grant(user=auditor, role=Role.objects.get(name="auditor"))

    body = client.get("/api/v1/users").json()
    by_email = {u["email"]: u for u in body["results"]}
    assert [r["name"] for r in by_email["auditor@example.com"]["roles"]] == ["auditor", "user"]
    filtered = client.get("/api/v1/users?role=auditor").json()["results"]
    assert [u["email"] for u in filtered] == ["auditor@example.com"]
    assert client.get("/api/v1/users?role=nobody").json()["results"] == []
    assert_problem(client.get("/api/v1/users?role=not a slug"), 400, "validation_error")


def test_the_user_list_by_role_pages_through_current_holders_only(api):
    client, _ = api("users:read")
    auditor = Role.objects.get(name="auditor")
    until = timezone.now() + timedelta(days=3)
    holders = [UserFactory() for _ in range(5)]
    for user in holders:
        services.role_grant(user=user, role=auditor, expires_at=until)
    lapsed = UserFactory()
    services.role_grant(user=lapsed, role=auditor)
    UserRole.objects.filter(user=lapsed).update(expires_at=timezone.now() - timedelta(hours=1))

    first = client.get("/api/v1/users?role=auditor&limit=2").json()
    second = client.get(first["next"]).json()
    third = client.get(second["next"]).json()
    pages = [first["results"], second["results"], third["results"]]
    assert [len(page) for page in pages] == [2, 2, 1] and third["next"] is None
    listed = [u["id"] for page in pages for u in page]
    assert listed == sorted((u.pk for u in holders), reverse=True)
    assert client.get(third["previous"]).json()["results"] == second["results"]
    held = {r["name"]: r for r in first["results"][0]["roles"]}
    assert held["auditor"]["expires_at"] == utc_text(until) and held["user"]["expires_at"] is None
    assert first["results"][0]["created_at"].endswith("Z")


def test_the_user_list_pages_newest_first_with_a_cursor(api):
    client, _ = api("users:read")
    for _ in range(4):
        UserFactory()
    first = client.get("/api/v1/users?limit=3").json()
    second = client.get(first["next"]).json()
    emails = [u["email"] for u in first["results"] + second["results"]]
    assert len(emails) == 5 and len(set(emails)) == 5
    ids = [u["id"] for u in first["results"] + second["results"]]
    assert ids == sorted(ids, reverse=True)


def test_creating_a_user_onboards_them(api):
    client, actor = api("users:write")
    response = client.post(
        "/api/v1/users",
        {"email": "New@Example.com", "name": "New", "password": "a long passphrase here"},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert [r["name"] for r in response.json()["roles"]] == ["user"]
    created = AuditLog.objects.get(event_type="user.created", actor_id=actor.pk)
    assert created.user_id == response.json()["id"]
    taken = client.post("/api/v1/users", {"email": "new@example.com"}, format="json")
    assert_problem(taken, 409, "email_taken")
    weak = client.post(
        "/api/v1/users", {"email": "w@example.com", "password": "123"}, format="json"
    )
    assert "password" in assert_problem(weak, 400, "validation_error")["errors"]
    assert_problem(
        client.post("/api/v1/users", {"email": "nope"}, format="json"), 400, "validation_error"
    )


def test_reading_and_changing_a_user(api):
    client, actor = api("users:read", "users:write")
    user = UserFactory(name="Old")
    assert client.get(f"/api/v1/users/{user.pk}").json()["name"] == "Old"
    assert_problem(client.get("/api/v1/users/nobody"), 404, "not_found")

    response = client.patch(
        f"/api/v1/users/{user.pk}",
        {"name": "New", "is_staff": True, "email_verified": True},
        format="json",
    )

    assert response.status_code == 200, response.content
    user.refresh_from_db()
    assert (user.name, user.is_staff, user.email_verified) == ("New", True, True)
    assert AuditLog.objects.filter(event_type="user.updated", actor_id=actor.pk).exists()
    bad = client.patch(f"/api/v1/users/{user.pk}", {"is_superuser": True}, format="json")
    assert_problem(bad, 400, "validation_error")
    assert_problem(
        client.patch(f"/api/v1/users/{user.pk}", {"image": "x"}, format="json"),
        400,
        "validation_error",
    )


def test_deactivating_a_user_ends_their_sessions(api):
    client, _ = api("users:write")
    user = UserFactory()
    victim = bearer_client(user)
    assert victim.get("/api/v1/auth/me/permissions").status_code == 200

    response = client.patch(f"/api/v1/users/{user.pk}", {"is_active": False}, format="json")

    assert response.status_code == 200 and response.json()["is_active"] is False
    assert not Session.objects.filter(user=user).exists()
    assert_problem(victim.get("/api/v1/auth/me/permissions"), 401, "not_authenticated")


def test_only_a_superuser_changes_or_deletes_a_superuser(api):
    client, _ = api("users:write", "users:delete")
    root = UserFactory(is_superuser=True)
    patch = client.patch(f"/api/v1/users/{root.pk}", {"is_active": False}, format="json")
    assert_problem(patch, 403, "privilege_exceeded")
    assert_problem(client.delete(f"/api/v1/users/{root.pk}"), 403, "privilege_exceeded")
    assert User.objects.get(pk=root.pk).is_active


def test_deleting_a_user_removes_what_cascades_and_keeps_the_audit_trail(api):
    client, actor = api("users:delete", "audit:read", "audit:export")
    user = UserFactory()
    services.role_grant(user=user, role=Role.objects.get(name="auditor"))
    bearer_client(user)

    assert client.delete(f"/api/v1/users/{user.pk}").status_code == 204

    assert not User.objects.filter(pk=user.pk).exists()
    assert not UserRole.objects.filter(user_id=user.pk).exists()
    assert not PermissionCache.objects.filter(user_id=user.pk).exists()
    assert not Session.objects.filter(user_id=user.pk).exists()
    assert AuditLog.objects.filter(event_type="user.created", user_id=user.pk).exists()
    deleted = AuditLog.objects.get(event_type="user.deleted", user_id=user.pk)
    assert deleted.actor_id == actor.pk and deleted.metadata["roles"] == ["auditor", "user"]
    assert_problem(client.delete(f"/api/v1/users/{user.pk}"), 404, "not_found")


def test_a_made_up_cursor_is_bad_input(api):
    client, _ = api("users:read", "roles:read")
    assert_problem(client.get("/api/v1/users?cursor=garbage"), 400, "validation_error")
    assert_problem(client.get("/api/v1/roles?cursor=garbage"), 400, "validation_error")


def test_the_user_list_renders_each_user_as_the_user_endpoint_does(api, clock):
    # The list and the detail endpoint read users through the same query; both
    # must say the same thing about everyone, in the serializer's formats.
    client, _ = api("users:read")
    auditor = Role.objects.get(name="auditor")
    odd = UserFactory()
    # Names are one line now (user_name_clean); a row written before may still hold these.
    User.objects.filter(pk=odd.pk).update(name='Zoë "quoted" \\ back\nline\ttab \x01 \u2028 😀')
    services.role_grant(user=odd, role=auditor, expires_at=clock.now + timedelta(days=3))
    lapsed = UserFactory()
    services.role_grant(user=lapsed, role=auditor, expires_at=clock.now + timedelta(minutes=5))
    roleless = UserFactory()
    UserRole.objects.filter(user=roleless).delete()
    User.objects.filter(pk=roleless.pk).update(
        image="https://example.com/a.png?x=<&>",
        created_at=clock.now.replace(microsecond=0),
        last_login=clock.now.replace(microsecond=120000),
        is_active=False,
    )
    clock.advance(minutes=6)

    listed = client.get("/api/v1/users?limit=200").json()["results"]

    assert len(listed) == User.objects.count()
    for item in listed:
        assert item == client.get(f"/api/v1/users/{item['id']}").json()
    by_id = {item["id"]: item for item in listed}
    assert [r["name"] for r in by_id[odd.pk]["roles"]] == ["auditor", "user"]
    assert [r["name"] for r in by_id[lapsed.pk]["roles"]] == ["user"]
    assert by_id[roleless.pk]["roles"] == []
    assert "." not in by_id[roleless.pk]["created_at"]  # no fraction when it is zero
    assert by_id[roleless.pk]["last_login"].endswith(".120000Z")


def test_the_user_list_pages_forward_and_back_by_role_with_the_same_links(api):
    client, _ = api("users:read")
    auditor = Role.objects.get(name="auditor")
    holders = [UserFactory() for _ in range(5)]
    for user in holders:
        services.role_grant(user=user, role=auditor)
    newest_first = [u.pk for u in sorted(holders, key=lambda u: u.pk, reverse=True)]

    first = client.get("/api/v1/users?role=auditor&limit=2").json()
    assert first["previous"] is None
    assert "role=auditor" in first["next"] and "limit=2" in first["next"]
    second = client.get(first["next"]).json()
    third = client.get(second["next"]).json()
    assert third["next"] is None
    pages = [first, second, third]
    assert [u["id"] for page in pages for u in page["results"]] == newest_first

    back = client.get(second["previous"]).json()
    assert back["results"] == first["results"] and back["previous"] is None
    assert back["next"] == first["next"]


def test_a_bad_cursor_in_the_user_list_is_bad_input(api):
    client, _ = api("users:read")
    assert_problem(client.get("/api/v1/users?cursor=garbage"), 400, "validation_error")
    # Well formed (base64 of "p=%00"), but no link carried it: cursors are signed.
    body = assert_problem(client.get("/api/v1/users?cursor=cD0lMDA%3D"), 400, "validation_error")
    assert set(body["errors"]) == {"cursor"}
