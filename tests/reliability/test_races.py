"""Races through the API: exactly the allowed outcomes, and nothing half-written."""

import threading
from datetime import timedelta

import pytest
from django.db import connections
from rest_framework.test import APIClient

from audit_app.models import AuditLog
from auth_app.models import User
from auth_app.services import PASSWORD_RESET, verification_create
from email_app.models import EmailSend
from permissions_app.models import PermissionCache, UserRole
from platform_app.flows import user_onboard

pytestmark = pytest.mark.django_db(transaction=True)


def race(count: int, request) -> list:
    """Run `request(i)` on `count` threads released at once; return the responses."""
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def run(i):
        try:
            barrier.wait()
            results[i] = request(i)
        except Exception as exc:  # an exception is an outcome the test must see
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_fifty_concurrent_sign_ups_of_one_email_create_one_user():
    def sign_up(i):
        client = APIClient(REMOTE_ADDR=f"203.0.113.{i + 1}")
        email = "Race@Example.com" if i % 2 else "race@example.com"
        return client.post(
            "/api/v1/auth/sign-up",
            {"email": email, "password": "correct horse battery staple"},
            format="json",
        )

    responses = race(50, sign_up)

    statuses = sorted(getattr(r, "status_code", repr(r)) for r in responses)
    assert statuses == [201] + [409] * 49
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"email_taken"}
    user = User.objects.get()
    assert UserRole.objects.filter(user=user).count() == 1
    assert PermissionCache.objects.filter(user=user).count() == 1
    assert AuditLog.objects.filter(event_type="user.created").count() == 1
    assert EmailSend.objects.count() == 1


def test_one_reset_token_used_concurrently_works_exactly_once():
    user = user_onboard(email="ada@example.com", password="correct horse battery staple")
    _v, token = verification_create(user=user, purpose=PASSWORD_RESET, ttl=timedelta(hours=1))

    def reset(i):
        client = APIClient(REMOTE_ADDR=f"203.0.113.{i + 1}")
        return client.post(
            "/api/v1/auth/reset-password",
            {"token": token, "new_password": f"new passphrase number {i}"},
            format="json",
        )

    responses = race(10, reset)

    winners = [i for i, r in enumerate(responses) if getattr(r, "status_code", None) == 200]
    assert len(winners) == 1, [getattr(r, "status_code", r) for r in responses]
    losers = [r for r in responses if getattr(r, "status_code", None) != 200]
    assert {(r.status_code, r.json()["code"]) for r in losers} == {(400, "token_invalid")}
    user.refresh_from_db()
    assert user.check_password(f"new passphrase number {winners[0]}")
    assert AuditLog.objects.filter(event_type="user.password_reset").count() == 1
