"""Issue 15, class 7 (remaining low findings): reset tokens, change-password failures,
forgot-password's equal work, and bad input that answered 500 instead of a 400/404 problem."""

import base64

import pytest
from rest_framework.test import APIClient

from sv_sdk.flows import user_onboard

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


def assert_problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["code"] == code
    return body


def cursor(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@pytest.fixture
def superuser_client():
    root = user_onboard(email="root@example.com", password=PASSWORD, is_superuser=True)
    client = APIClient()
    client.force_authenticate(user=root)
    return client


@pytest.mark.parametrize(
    "raw",
    [
        b"p=zzz",  # the review's forged cursor: not a timestamp
        b"p=2026-01-01T00:00:00%2B00:00",  # a timestamp alone, no id to break ties
        b"p=",
        b"p=\x00",
        b"p=" + b"9" * 60,
        b"o=-1&p=zzz",
        b"r=1&p=zzz",
    ],
)
@pytest.mark.parametrize("path", ["/api/v1/audit-logs", "/api/v1/users", "/api/v1/roles"])
def test_class7_a_forged_list_cursor_is_a_400_problem(superuser_client, path, raw):
    response = superuser_client.get(path, {"cursor": cursor(raw)})

    # A 200 is fine for a position the list can use; otherwise a 400 problem, never a 5xx.
    if response.status_code != 200:
        assert response.status_code == 400, response.content
        assert response["Content-Type"] == "application/problem+json"


def test_class7_the_review_cursor_on_audit_logs_is_refused_as_invalid(superuser_client):
    response = superuser_client.get("/api/v1/audit-logs", {"cursor": cursor(b"p=zzz")})

    body = assert_problem(response, 400, "validation_error")
    assert body["errors"] == {"cursor": ["Invalid cursor."]}


@pytest.mark.parametrize(
    "path", ["/api/v1/auth/sign-in", "/api/v1/auth/sign-up", "/api/v1/auth/forgot-password"]
)
def test_class7_deeply_nested_json_is_a_400_problem_not_a_recursion_error(path):
    body = "[" * (64 * 1024 - 1)

    response = APIClient(REMOTE_ADDR="192.0.2.70").post(path, body, content_type="application/json")

    assert_problem(response, 400, "invalid_json")


def test_class7_deeply_nested_json_on_an_authenticated_endpoint_is_a_400(superuser_client):
    response = superuser_client.post(
        "/api/v1/roles", "{" + '"a":[' * 12000, content_type="application/json"
    )

    assert_problem(response, 400, "invalid_json")


@pytest.mark.parametrize("esp", ["resend", "mailgun", "amazon_ses", "sendgrid", "postmark"])
def test_class7_a_webhook_for_an_esp_that_is_not_configured_is_a_404_problem(settings, esp):
    settings.SV_EMAIL_PROVIDER = ""
    response = APIClient().post(
        f"/webhooks/anymail/{esp}/tracking/", "{}", content_type="application/json"
    )

    assert_problem(response, 404, "not_found")


def test_class7_only_the_configured_esp_has_a_webhook(settings):
    settings.SV_EMAIL_PROVIDER = "postmark"
    settings.ANYMAIL = {"WEBHOOK_SECRET": "hook:secret"}

    other = APIClient().post(
        "/webhooks/anymail/resend/tracking/", "{}", content_type="application/json"
    )
    inbound = APIClient().post(
        "/webhooks/anymail/postmark/inbound/", "{}", content_type="application/json"
    )
    unknown = APIClient().post(
        "/webhooks/anymail/no-such-esp/tracking/", "{}", content_type="application/json"
    )
    configured = APIClient().post(
        "/webhooks/anymail/postmark/tracking/", "{}", content_type="application/json"
    )

    for response in (other, inbound, unknown):
        assert_problem(response, 404, "not_found")
    # The configured ESP's view answers (here: no credentials, so anymail refuses it).
    assert configured.status_code in (400, 403)
