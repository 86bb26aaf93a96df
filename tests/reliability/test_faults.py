"""Fault injection through the API: the Nth statement of a request fails, for every N.

Whatever statement fails, the client gets a problem response (no traceback, no
secret), and the database holds either all of the operation or none of it.
"""

import json
from datetime import timedelta

import pytest
from django.db import connection
from rest_framework.test import APIClient

from auth_app.services import PASSWORD_RESET, verification_create
from conftest import table_counts
from sv_sdk.flows import user_onboard
from tests.faults import FailAt

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
    assert statements >= 10  # user, role, cache, audit, token, outbox, job, session...


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
