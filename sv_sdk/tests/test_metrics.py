"""/metrics: a scripted run moves each counter by what happened; scrapes need the token."""

import base64
import ipaddress
import json

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from auth_app.models import User
from conftest import run_worker
from email_app.models import EmailSend
from email_app.services import email_queue
from permissions_app.models import Role
from permissions_app.services import role_grant
from reliability.mail import SmtpServer

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "metrics-scrape-token-for-tests"
PASSWORD = "correct horse battery staple"
WEBHOOK_AUTH = "hook:correct-horse"


@pytest.fixture(autouse=True)
def _metrics_settings(settings):
    settings.SV_METRICS_TOKEN = TOKEN
    settings.SV_METRICS_ALLOWED_NETWORKS = [ipaddress.ip_network("192.0.2.0/24")]
    settings.ANYMAIL = {"WEBHOOK_SECRET": WEBHOOK_AUTH}
    settings.SV_EMAIL_WEBHOOK_PROVIDERS = ["postmark"]


def scrape() -> dict[tuple, float]:
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def moved(before: dict, after: dict, name: str, **labels) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def test_a_scripted_run_moves_every_counter_by_what_happened(settings):
    settings.SV_LOCKOUT_THRESHOLD = 2
    before = scrape()

    # Two sign-ups: two sessions, two verification emails queued.
    tokens = []
    for n, ip in enumerate(("203.0.113.1", "203.0.113.2")):
        response = APIClient(REMOTE_ADDR=ip).post(
            "/api/v1/auth/sign-up",
            {"email": f"reader{n}@example.com", "password": PASSWORD, "name": "R"},
            format="json",
        )
        assert response.status_code == 201, response.content
        tokens.append(response.json()["session"]["token"])
    queued = scrape()
    assert value(queued, "sv_email_outbox_depth", status="queued") == 2
    assert value(queued, "sv_email_outbox_oldest_queued_age_seconds") > 0

    # Two wrong passwords from one address lock that address out; the next try is refused.
    attacker = APIClient(REMOTE_ADDR="203.0.113.9")
    for _ in range(2):
        response = attacker.post(
            "/api/v1/auth/sign-in",
            {"email": "reader0@example.com", "password": "wrong password"},
            format="json",
        )
        assert response.status_code == 401
    locked = attacker.post(
        "/api/v1/auth/sign-in",
        {"email": "reader0@example.com", "password": PASSWORD},
        format="json",
    )
    assert locked.status_code == 429

    # The worker sends both emails; the provider reports one delivered.
    run_worker()
    send = EmailSend.objects.filter(to_email="reader1@example.com").get()
    delivery = {
        "RecordType": "Delivery",
        "MessageID": send.provider_message_id,
        "Recipient": send.to_email,
        "Metadata": {"send_id": send.pk},
    }
    webhook = Client().post(
        "/webhooks/anymail/postmark/tracking/",
        json.dumps(delivery),
        content_type="application/json",
        HTTP_AUTHORIZATION="Basic " + base64.b64encode(WEBHOOK_AUTH.encode()).decode(),
    )
    assert webhook.status_code == 200

    # A sign-out and a role grant (one permission cache row recomputed).
    signed_in = APIClient(REMOTE_ADDR="203.0.113.1")
    signed_in.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens[0]}")
    assert signed_in.post("/api/v1/auth/sign-out").status_code == 204
    role_grant(
        user=User.objects.get(email="reader1@example.com"), role=Role.objects.get(name="auditor")
    )

    after = scrape()
    assert moved(before, after, "sv_sign_ups_total") == 2
    assert moved(before, after, "sv_sessions_created_total") == 2
    assert moved(before, after, "sv_sign_ins_total", result="failure") == 2
    assert moved(before, after, "sv_sign_ins_total", result="success") == 0
    assert moved(before, after, "sv_lockouts_total") == 1
    assert moved(before, after, "sv_rate_limit_refusals_total", scope="lockout") == 1
    assert moved(before, after, "sv_emails_total", status="queued") == 2
    assert moved(before, after, "sv_emails_total", status="sent") == 2
    assert moved(before, after, "sv_emails_total", status="delivered") == 1
    assert (
        moved(before, after, "sv_email_webhook_events_total", provider="postmark", result="applied")
        == 1
    )
    assert moved(before, after, "sv_sessions_revoked_total", reason="sign_out") == 1
    assert moved(before, after, "sv_permission_cache_rebuilds_total") == 1
    sign_up = {"method": "POST", "route": "/api/v1/auth/sign-up", "status": "201"}
    assert moved(before, after, "sv_http_requests_total", **sign_up) == 2
    assert moved(before, after, "sv_http_request_duration_seconds_count", **sign_up) == 2
    assert value(after, "sv_email_outbox_depth", status="queued") == 0
    assert value(after, "sv_email_outbox_oldest_queued_age_seconds") == 0
    assert value(after, "sv_db_pool_connections") >= 1


def test_a_rolled_back_sign_up_counts_nothing():
    APIClient(REMOTE_ADDR="203.0.113.20").post(
        "/api/v1/auth/sign-up",
        {"email": "taken@example.com", "password": PASSWORD, "name": "T"},
        format="json",
    )
    before = scrape()
    response = APIClient(REMOTE_ADDR="203.0.113.21").post(
        "/api/v1/auth/sign-up",
        {"email": "TAKEN@example.com", "password": PASSWORD, "name": "T"},
        format="json",
    )
    assert response.status_code == 409
    after = scrape()
    assert moved(before, after, "sv_sign_ups_total") == 0
    assert moved(before, after, "sv_emails_total", status="queued") == 0
    assert moved(before, after, "sv_sessions_created_total") == 0


def test_a_scrape_without_the_token_is_refused():
    response = Client().get("/metrics")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert response.json()["code"] == "not_authenticated"
    wrong = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer not-the-token")
    assert wrong.status_code == 401
    assert b"sv_" not in wrong.content


def test_an_address_in_the_allowed_networks_scrapes_without_the_token():
    assert Client(REMOTE_ADDR="192.0.2.7").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="198.51.100.7").get("/metrics").status_code == 401


def test_a_transient_delivery_failure_counts_as_deferred(settings):
    server = SmtpServer()
    server.inbox.refuse_from = 0  # 421 to every message: try again later
    server.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    try:
        send = email_queue(
            to_email="later@example.com",
            category="account",
            template_key="welcome",
            context={"user_name": "L"},
        )
        before = scrape()
        run_worker()
        after = scrape()
    finally:
        server.stop()
    send.refresh_from_db()
    assert send.status == EmailSend.Status.DEFERRED
    assert moved(before, after, "sv_emails_total", status="deferred") == 1
    assert moved(before, after, "sv_emails_total", status="sent") == 0
    assert value(after, "sv_email_outbox_depth", status="deferred") == 1
