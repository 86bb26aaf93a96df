"""Fault injection through the API: the Nth statement of a request fails, for every N.

Whatever statement fails, the client gets a problem response (no traceback, no
secret), and the database holds either all of the operation or none of it.
"""

import contextlib
import json
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from auth_app.services import PASSWORD_RESET, session_create, verification_create
from conftest import table_counts
from email_app.models import EmailSend, EmailWebhook
from email_app.services import email_deliver, email_queue
from permissions_app.models import Role, UserRole
from platform_app.flows import user_onboard
from platform_app.invariants import invariants_check
from tests.faults import FailAt, InjectedFault

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "correct horse battery staple"
_addresses = iter(range(1, 10_000))


def fresh_client() -> APIClient:
    # A new address per request keeps per-IP rate limits out of the sweep.
    n = next(_addresses)
    return APIClient(REMOTE_ADDR=f"10.{n // 65536}.{n // 256 % 256}.{n % 256}")


def business_counts() -> dict[str, int]:
    # Rate-limit counters commit on their own, before the operation: not part of it.
    return {t: n for t, n in table_counts().items() if t != "auth.rate_limits"}


def statements_of(request) -> int:
    counter = FailAt()
    with connection.execute_wrapper(counter):
        response = request()
    assert response.status_code < 300, response.content
    return counter.count


def sweep(request, *, secrets: tuple[str, ...] = ()):
    """Fail each statement of `request` in turn; check the answer and that nothing changed."""
    baseline_statements = None
    for nth in range(1, 200):
        before = business_counts()
        with connection.execute_wrapper(FailAt(nth=nth)) as _:
            response = request()
        if response.status_code < 300:
            # Past the last statement: the request went through whole.
            baseline_statements = nth - 1
            break
        body = response.content.decode()
        assert response["Content-Type"] == "application/problem+json", (nth, body)
        assert response.status_code == 503 and json.loads(body)["code"] == "service_unavailable"
        assert "Traceback" not in body and "injected" not in body
        for secret in secrets:
            assert secret not in body
        assert business_counts() == before, f"statement {nth} left a partial write"
    assert baseline_statements, "the request never succeeded"
    return baseline_statements


def test_sign_up_fails_cleanly_at_every_statement():
    attempt = iter(range(1000))

    def sign_up():
        return fresh_client().post(
            "/api/v1/auth/sign-up",
            {"email": f"user{next(attempt)}@example.com", "password": PASSWORD},
            format="json",
        )

    statements = sweep(sign_up, secrets=(PASSWORD,))
    # The rate limit, the onboarding's two batched queries (its seven tables and the
    # job; tests/test_onboarding.py fails each of those on the server), the session.
    assert statements >= 4


def test_password_reset_fails_cleanly_at_every_statement():
    user = user_onboard(email="ada@example.com", password=PASSWORD)
    _v, token = verification_create(user=user, purpose=PASSWORD_RESET, ttl=timedelta(hours=1))

    def reset():
        return fresh_client().post(
            "/api/v1/auth/reset-password",
            {"token": token, "new_password": "a brand new passphrase"},
            format="json",
        )

    sweep(reset, secrets=(token, "a brand new passphrase"))
    user.refresh_from_db()
    assert user.check_password("a brand new passphrase")


@pytest.fixture
def operator():
    """A superuser's API client and a user to act on."""
    admin = user_onboard(email="root@example.com", is_superuser=True)
    _session, token = session_create(user=admin)
    target = user_onboard(email="ada@example.com")

    def client() -> APIClient:
        api = fresh_client()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        return api

    return client, target


def test_granting_and_revoking_a_role_fail_cleanly_at_every_statement(operator):
    client, target = operator

    def grant():
        return client().post(f"/api/v1/users/{target.pk}/roles", {"role": "auditor"}, format="json")

    auditor = Role.objects.get(name="auditor")

    def revoke():
        return client().delete(f"/api/v1/users/{target.pk}/roles/{auditor.pk}")

    sweep(grant)
    assert UserRole.objects.filter(user=target, role=auditor).exists()
    sweep(revoke)
    assert not UserRole.objects.filter(user=target, role=auditor).exists()
    assert invariants_check() == []


def test_email_delivery_fails_cleanly_at_every_statement(settings):
    """A failed statement never loses a send, never marks one sent that was not, and a
    send the server accepted before the failure is left to the stuck-send sweep."""
    user = user_onboard(email="ada@example.com")
    counter = FailAt()
    first = EmailSend.objects.get(user=user)
    with connection.execute_wrapper(counter):
        email_deliver(send_id=first.pk)
    assert EmailSend.objects.get(pk=first.pk).status == EmailSend.Status.SENT
    statements = counter.count

    for nth in range(1, statements + 1):
        send = email_queue(
            to_email="ada@example.com",
            category="account",
            template_key="welcome",
            context={"user_name": "Ada"},
            user=user,
        )
        delivered_before = len(mail.outbox)
        with connection.execute_wrapper(FailAt(nth=nth)), contextlib.suppress(InjectedFault):
            email_deliver(send_id=send.pk)
        send.refresh_from_db()
        delivered = len(mail.outbox) > delivered_before
        assert send.status in {"queued", "deferred", "sending", "sent"}, (nth, send.status)
        if send.status == "sent":
            assert delivered, f"statement {nth}: marked sent but never delivered"
        if delivered and send.status != "sent":
            # The doubt window: accepted, not yet recorded. It stays claimed, and the
            # stuck-send sweep retries it (with the same Message-ID) after the timeout.
            assert send.status == "sending", (nth, send.status)
    assert invariants_check() == []


def test_webhook_processing_fails_cleanly_at_every_statement(client, settings):
    from email_app.tests.test_webhooks import POSTMARK_AUTH, iso, postmark_post, sent_send

    settings.ANYMAIL = {"WEBHOOK_SECRET": POSTMARK_AUTH}
    settings.SV_EMAIL_WEBHOOK_PROVIDERS = ["postmark"]
    client.raise_request_exception = False
    send = sent_send(provider="postmark", message_id="pm-faults")
    bounce = {
        "RecordType": "Bounce",
        "ID": 777,
        "Type": "HardBounce",
        "MessageID": "pm-faults",
        "Email": "reader@example.com",
        "BouncedAt": iso(timezone.now()),
        "Description": "The mailbox does not exist",
    }

    for nth in range(1, 100):
        before = business_counts()
        with connection.execute_wrapper(FailAt(nth=nth)):
            response = postmark_post(client, bounce)
        if response.status_code == 200:
            break
        # A 5xx makes the provider retry later; nothing of the event is kept meanwhile.
        assert response.status_code >= 500, (nth, response.status_code)
        assert response["Content-Type"] == "application/problem+json"
        assert business_counts() == before, f"statement {nth} left a partial write"
        assert EmailSend.objects.get(pk=send.pk).status == EmailSend.Status.SENT
    else:
        pytest.fail("the webhook never went through")

    assert EmailWebhook.objects.filter(provider="postmark", event_id="777").count() == 1
    assert EmailSend.objects.get(pk=send.pk).status == EmailSend.Status.BOUNCED
