"""Who, from where, in which request: picked up from the request, or given explicitly."""

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client
from django.urls import include, path
from rest_framework import authentication
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from audit_app.context import audit_context
from audit_app.models import AuditLog
from audit_app.services import audit_record
from auth_app.models import User
from platform_app.flows import user_onboard

pytestmark = pytest.mark.django_db


class HeaderAuthentication(authentication.BaseAuthentication):
    """Authenticates inside the view, as every DRF authentication class does."""

    def authenticate(self, request):
        email = request.META.get("HTTP_X_TEST_USER")
        return (User.objects.get(email=email), None) if email else None


class RecordApi(APIView):
    authentication_classes = [HeaderAuthentication]
    permission_classes = [IsAuthenticated]

    def post(self, request):
        row = audit_record(event_type="user.updated", user_id=str(request.user.pk))
        return Response({"id": row.id})


urlpatterns = [
    path("record", RecordApi.as_view()),
    path("", include("platform_app.urls")),
]


@pytest.mark.urls(__name__)
def test_an_api_request_fills_actor_address_agent_and_request_id(root):
    response = Client(REMOTE_ADDR="203.0.113.9").post(
        "/record",
        headers={"X-Test-User": root.email, "User-Agent": "curl/8.5", "X-Request-ID": "req-42"},
    )

    assert response.status_code == 200, response.content
    assert response["X-Request-ID"] == "req-42"
    row = AuditLog.objects.get(id=response.json()["id"])
    assert row.actor_id == root.pk  # set by DRF after the middleware ran
    assert row.ip_address == "203.0.113.9"
    assert row.user_agent == "curl/8.5"
    assert row.request_id == "req-42"


@pytest.mark.parametrize(
    "sent", [None, "", "has spaces", "semi;colon", "x" * 101, "ünïcode", "a\nb"]
)
def test_a_missing_or_malformed_request_id_is_replaced_by_a_new_one(client, sent):
    headers = {"X-Request-ID": sent} if sent is not None else {}

    response = client.get("/api/v1/audit-logs", headers=headers)

    echoed = response["X-Request-ID"]
    assert echoed and echoed != sent
    assert len(echoed) == 36  # a fresh UUIDv7
    assert client.get("/api/v1/audit-logs")["X-Request-ID"] != echoed


def test_a_well_formed_request_id_is_echoed_even_on_errors(client):
    response = client.get("/no/such/page", headers={"X-Request-ID": "trace.ABC-123_x"})

    assert response.status_code == 404
    assert response["X-Request-ID"] == "trace.ABC-123_x"


@pytest.mark.urls("audit_app.tests.admin_probe")
def test_an_admin_change_records_who_changed_what_from_where(root):
    target = user_onboard(email="grace@example.com", name="Grace")
    client = Client(REMOTE_ADDR="2001:db8::7", HTTP_USER_AGENT="Firefox/130")
    client.force_login(root)

    response = client.post(
        f"/probe-admin/auth_app/user/{target.pk}/change/",
        {"email": target.email, "name": "Grace Hopper", "is_active": "on"},
        headers={"X-Request-ID": "admin-change-1"},
    )

    assert response.status_code == 302, response.content[:2000]
    row = AuditLog.objects.get(event_type="admin.action")
    assert row.actor_id == root.pk
    assert row.user_id == target.pk
    assert (row.target_type, row.target_id) == ("auth_app.user", target.pk)
    assert row.metadata["action"] == "changed"
    assert row.metadata["changed_fields"] == ["Name"]
    assert (row.ip_address, row.user_agent, row.request_id) == (
        "2001:db8::7",
        "Firefox/130",
        "admin-change-1",
    )
    assert "Grace Hopper" not in str(row.metadata)  # names of fields, never their values
    assert LogEntry.objects.count() == 1


def test_outside_a_request_the_system_acts():
    row = audit_record(event_type="email.sent")

    assert (row.actor_id, row.ip_address, row.user_agent, row.request_id) == (None, None, "", "")


def test_a_command_or_job_says_who_acts_and_explicit_arguments_win():
    with audit_context(actor_id="operator-1", request_id="job-7"):
        from_context = audit_record(event_type="role.assigned")
        explicit = audit_record(event_type="role.assigned", actor_id=None, request_id="other")

    assert (from_context.actor_id, from_context.request_id) == ("operator-1", "job-7")
    assert (explicit.actor_id, explicit.request_id) == (None, "other")


def test_metadata_that_names_a_secret_is_refused_at_any_depth():
    with pytest.raises(ValueError, match="password"):
        audit_record(event_type="user.updated", metadata={"changes": {"password": "x"}})
    assert not AuditLog.objects.exists()
