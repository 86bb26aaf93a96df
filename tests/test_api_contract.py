"""One rule per concern across the API: lists, timestamps, CSRF, and a schema that says so."""

import io
import json
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from audit_app.models import AuditLog
from auth_app.services import session_create
from email_app.models import EmailTemplate
from permissions_app.models import Role
from platform_app.flows import user_onboard

pytestmark = pytest.mark.django_db

LISTS = [
    "/api/v1/users",
    "/api/v1/roles",
    "/api/v1/audit-logs",
    "/api/v1/email/templates",
    "/api/v1/email/sends",
    "/api/v1/auth/sessions",
    "/api/v1/users/{me}/sessions",
    "/api/v1/users/{me}/roles",
]


@pytest.fixture
def admin():
    user = user_onboard(email="root@example.com", is_superuser=True)
    _session, token = session_create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    client.user = user
    return client


def problem_fields(response, status=400) -> set[str]:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    return set(response.json().get("errors", {}))


@pytest.mark.parametrize("path", LISTS)
def test_every_list_refuses_a_bad_limit_a_damaged_cursor_and_an_unknown_parameter(admin, path):
    url = path.format(me=admin.user.pk)
    for limit in ["abc", "0", "-1", "201", "1.5", " 5", ""]:
        assert problem_fields(admin.get(url, {"limit": limit})) == {"limit"}, limit
    # Base64 of "p=zzz" (well formed, and a fine position for a list ordered by name),
    # of "o=-1", garbage, and an empty cursor: none came from a link.
    for cursor in ["cD16eno=", "bz0tMQ==", "not base64!", ""]:
        assert problem_fields(admin.get(url, {"cursor": cursor})) == {"cursor"}, cursor
    assert problem_fields(admin.get(url, {"limit": "5", "colour": "red"})) == {"colour"}
    page = admin.get(url, {"limit": "200"})
    assert page.status_code == 200 and set(page.json()) == {"next", "previous", "results"}


def test_a_cursor_from_one_list_is_refused_by_another(admin):
    user_onboard(email="ada@example.com")
    next_users = admin.get("/api/v1/users", {"limit": "1"}).json()["next"]
    cursor = parse_qs(urlsplit(next_users).query)["cursor"][0]
    # Signed, but its position (a user id) is no time the audit log can page from.
    assert problem_fields(admin.get("/api/v1/audit-logs", {"cursor": cursor})) == {"cursor"}
    assert admin.get(next_users).status_code == 200


def test_templates_page_by_cursor_like_every_other_list(admin):
    first = admin.get("/api/v1/email/templates", {"limit": "2"}).json()
    assert len(first["results"]) == 2 and "cursor=" in first["next"]
    assert "offset" not in first["next"]
    second = admin.get(first["next"]).json()
    keys = {(t["key"], t["locale"]) for t in first["results"] + second["results"]}
    assert len(keys) == len(first["results"]) + len(second["results"])
    assert len(keys) == min(4, EmailTemplate.objects.count())


def test_filters_that_are_blank_are_refused_not_ignored(admin):
    assert problem_fields(admin.get("/api/v1/users", {"role": ""})) == {"role"}
    assert problem_fields(admin.get("/api/v1/email/sends", {"user": ""})) == {"user"}


def test_timestamps_are_utc_with_z_in_nested_rows_and_audit_metadata(admin):
    user = user_onboard(email="ada@example.com")
    later = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    in_paris = later.astimezone(timezone(timedelta(hours=2))).isoformat()
    granted = admin.post(
        f"/api/v1/users/{user.pk}/roles", {"role": "auditor", "expires_at": in_paris}, format="json"
    )
    assert granted.status_code == 201, granted.content

    detail = admin.get(f"/api/v1/users/{user.pk}").json()
    listed = admin.get("/api/v1/users").json()["results"]
    nested = [r["expires_at"] for r in detail["roles"] if r["expires_at"]]
    nested += [r["expires_at"] for u in listed for r in u["roles"] if r["expires_at"]]
    assert len(nested) == 2 and all(value.endswith("Z") for value in nested)

    event = AuditLog.objects.filter(
        event_type="role.assigned", user_id=user.pk, metadata__role="auditor"
    ).get()
    assert "+00:00" in json.dumps(event.metadata)  # stored as the service wrote it
    shown = admin.get(f"/api/v1/audit-logs/{event.pk}").json()
    assert shown["metadata"]["expires_at"].endswith("Z")
    assert shown["metadata"]["expires_at"] == nested[0] == later.isoformat().replace("+00:00", "Z")


def test_a_browser_gets_its_csrf_token_from_the_api():
    client = APIClient(enforce_csrf_checks=True)
    body = client.get("/api/v1/auth/csrf").json()
    assert body["csrf_token"] and client.cookies["csrftoken"].value
    user_onboard(email="ada@example.com", password="correct horse battery staple")
    before = client.cookies["csrftoken"].value
    signed_in = client.post(
        "/api/v1/auth/sign-in",
        {"email": "ada@example.com", "password": "correct horse battery staple"},
        format="json",
    )
    # A new token at sign-in: one planted before it is worthless.
    assert signed_in.status_code == 200 and signed_in.cookies["csrftoken"].value != before


def _document() -> dict:
    out = io.StringIO()
    call_command("spectacular", "--format", "openapi-json", stdout=out)
    return json.loads(out.getvalue())


def test_the_schema_states_what_the_server_enforces():
    document = _document()
    schemas = document["components"]["schemas"]
    users = document["paths"]["/api/v1/users"]
    # Either credential, not both at once.
    assert users["get"]["security"] == [{"bearerAuth": []}, {"cookieAuth": []}]
    # Unknown fields are refused, and so are blank strings.
    sign_up = schemas["SignUpInput"]
    assert sign_up["additionalProperties"] is False
    assert sign_up["properties"]["password"]["minLength"] == 1
    # limit's bounds, on every list.
    for path in ("/api/v1/users", "/api/v1/email/templates", "/api/v1/auth/sessions"):
        (limit,) = [p for p in document["paths"][path]["get"]["parameters"] if p["name"] == "limit"]
        assert (limit["schema"]["minimum"], limit["schema"]["maximum"]) == (1, 200)
    # An address stored as given is not promised to pass `format: email` later.
    assert "format" not in schemas["UserOutput"]["properties"]["email"]
    # Problems with their codes, per operation.
    conflict = users["post"]["responses"]["409"]["content"]["application/problem+json"]
    assert conflict["schema"]["allOf"][1]["properties"]["code"]["enum"] == ["email_taken"]
    roles_delete = document["paths"]["/api/v1/roles/{role_id}"]["delete"]["responses"]["409"]
    codes = roles_delete["content"]["application/problem+json"]["schema"]["allOf"][1]
    assert codes["properties"]["code"]["enum"] == ["role_in_use", "system_role"]
    # A rule no schema states is named, and described.
    audit = document["paths"]["/api/v1/audit-logs"]["get"]
    assert audit["x-unstated-rules"] == ["cursor", "until"] and "until" in audit["description"]


def test_role_names_and_permissions_are_described_as_the_server_checks_them(admin):
    create = _document()["components"]["schemas"]["RoleCollectionCreateInput"]["properties"]
    assert "pattern" in create["name"]
    (catalogue,) = create["permissions"]["items"]["allOf"]
    enum = _document()["components"]["schemas"][catalogue["$ref"].rpartition("/")[2]]["enum"]
    assert {"*", "users:*", "users:read"} <= set(enum)
    refused = admin.post("/api/v1/roles", {"name": "a b", "permissions": []}, format="json")
    assert problem_fields(refused) == {"name"}
    refused = admin.post("/api/v1/roles", {"name": "ops", "description": 0}, format="json")
    assert problem_fields(refused) == {"description"}
    assert not Role.objects.filter(name="ops").exists()
