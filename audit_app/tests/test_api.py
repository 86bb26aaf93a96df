"""GET /api/v1/audit-logs and /api/v1/audit-logs/{id}, for holders of audit:read."""

from datetime import timedelta

import pytest
from django.utils import timezone

from audit_app.models import AuditLog
from audit_app.services import audit_record
from platform_app.flows import user_onboard
from tests.support import api_client, assert_problem

pytestmark = pytest.mark.django_db

URL = "/api/v1/audit-logs"


@pytest.fixture
def trail():
    rows = {}
    rows["a1"] = audit_record(
        event_type="role.revoked",
        actor_id="admin-1",
        user_id="user-1",
        target_type="role",
        target_id="role-1",
    )
    rows["a2"] = audit_record(
        event_type="user.updated",
        actor_id="admin-2",
        user_id="user-1",
        target_type="user",
        target_id="user-1",
    )
    rows["a3"] = audit_record(
        event_type="role.revoked",
        actor_id="admin-1",
        user_id="user-2",
        target_type="role",
        target_id="role-1",
    )
    return rows


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"event_type": "role.revoked"}, ["a3", "a1"]),
        ({"actor_id": "admin-1"}, ["a3", "a1"]),
        ({"user_id": "user-1"}, ["a2", "a1"]),
        ({"target_type": "role", "target_id": "role-1"}, ["a3", "a1"]),
        ({"target_id": "user-1"}, ["a2"]),
        ({"user_id": "user-1", "event_type": "role.revoked"}, ["a1"]),
        ({"user_id": "nobody"}, []),
    ],
)
def test_filters_select_rows_newest_first(auditor_client, trail, params, expected):
    response = auditor_client.get(URL, params)

    assert ids(response) == [trail[name].id for name in expected]


def test_since_is_inclusive_and_until_exclusive(auditor_client, trail):
    second = trail["a2"].occurred_at

    assert ids(auditor_client.get(URL, {"since": second.isoformat(), "user_id": "user-1"})) == [
        trail["a2"].id
    ]
    assert ids(auditor_client.get(URL, {"until": second.isoformat(), "user_id": "user-1"})) == [
        trail["a1"].id
    ]
    later = (timezone.now() + timedelta(hours=1)).isoformat()
    assert ids(auditor_client.get(URL, {"since": later})) == []


def test_the_cursor_walks_every_row_once_newest_first(auditor_client):
    written = [audit_record(event_type="user.updated", user_id="walker").id for _ in range(7)]

    seen, url, params = [], URL, {"user_id": "walker", "limit": 3}
    while url:
        body = auditor_client.get(url, params).json()
        seen += [row["id"] for row in body["results"]]
        url, params = body["next"], None

    assert seen == written[::-1]


def test_a_row_reads_back_in_full(auditor_client):
    row = audit_record(
        event_type="user.updated",
        actor_id="admin-1",
        user_id="user-1",
        metadata={"fields": ["name"]},
        ip_address="192.0.2.5",
        user_agent="agent/1",
        request_id="req-1",
    )

    body = auditor_client.get(f"{URL}/{row.id}").json()

    assert body["event_type"] == "user.updated"
    assert body["metadata"] == {"fields": ["name"]}
    assert (body["ip_address"], body["user_agent"], body["request_id"]) == (
        "192.0.2.5",
        "agent/1",
        "req-1",
    )
    assert "row_mac" not in body


@pytest.mark.parametrize("log_id", ["0", "999999999", "99999999999999999999999"])
def test_an_unknown_id_is_404(auditor_client, log_id):
    assert_problem(auditor_client.get(f"{URL}/{log_id}"), 404, "not_found")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "yesterday"}, "since"),
        ({"until": "2024-13-45T00:00:00Z"}, "until"),
        ({"since": "2024-02-01T00:00:00Z", "until": "2024-01-01T00:00:00Z"}, "until"),
        ({"user_id": "x" * 37}, "user_id"),
        ({"user": "user-1"}, "user"),
        ({"cursor": "not-a-cursor"}, "cursor"),
    ],
)
def test_bad_filters_are_a_400_problem(auditor_client, params, field):
    body = assert_problem(auditor_client.get(URL, params), 400, "validation_error")

    assert field in body["errors"]


def test_anonymous_callers_get_401_and_users_without_audit_read_get_403(trail):
    assert_problem(api_client(None).get(URL), 401, "not_authenticated")
    client = api_client(user_onboard(email="plain@example.com"))
    assert_problem(client.get(URL), 403, "permission_denied")
    assert_problem(client.get(f"{URL}/{trail['a1'].id}"), 403, "permission_denied")
    assert AuditLog.objects.count() >= 3
