"""better-auth's official client, unchanged, against a live sv_sdk (gunicorn): every call of
the compatible API in cookie and bearer mode, and its error codes (client.test.mjs)."""

import json
import subprocess
from datetime import timedelta

import pytest
from django.db import connection

from auth_app.models import User
from auth_app.services import EMAIL_VERIFICATION, PASSWORD_RESET, verification_create
from platform_app.flows import user_onboard
from reliability.servers import app_environment, database_url, gunicorn

from .conftest import HERE

FRONT = "http://front.example"


def _cases() -> dict:
    """Per mode, a user whose verification link and one whose reset link the client follows."""
    cases = {}
    for mode in ("cookie", "bearer"):
        pending = user_onboard(email=f"{mode}-pending@example.com", password="x" * 20)
        _, verify_token = verification_create(
            user=pending, purpose=EMAIL_VERIFICATION, ttl=timedelta(hours=1)
        )
        forgetful = user_onboard(email=f"{mode}-forgot@example.com", password="y" * 20)
        _, reset_token = verification_create(
            user=forgetful, purpose=PASSWORD_RESET, ttl=timedelta(hours=1)
        )
        cases[mode] = {
            "verifyEmail": pending.email,
            "verifyToken": verify_token,
            "resetEmail": forgetful.email,
            "resetToken": reset_token,
        }
    return cases


def _jobs(task: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT args->>'email' FROM procrastinate_jobs WHERE task_name = %s", [task])
        return sorted(row[0] for row in cursor.fetchall())


@pytest.mark.django_db(transaction=True)
def test_the_official_client_works_unchanged_in_cookie_and_bearer_mode(node):
    cases = _cases()
    environment = {
        **app_environment(database_url()),
        "SV_TRUSTED_ORIGINS": FRONT,
        "SV_PUBLIC_URL": FRONT,
        "BETTER_AUTH_SECRET": "client-test-secret-0123456789-not-a-real-one",
        "SV_MFA_ENFORCE": "false",
    }
    with gunicorn(environment, workers=1) as base:
        run = subprocess.run(  # noqa: S603
            [node, "--test", "--test-concurrency=1", "client.test.mjs"],
            cwd=HERE,
            env={"PATH": environment["PATH"], "SV_URL": base, "SV_ORIGIN": FRONT,
                 "SV_CASES": json.dumps(cases)},
            capture_output=True,
            text=True,
            timeout=300,
        )  # fmt: skip
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "# fail 0" in run.stdout and "# pass 30" in run.stdout, run.stdout[-2000:]

    # What the client cannot see: the server's side of the same calls.
    for mode in ("cookie", "bearer"):
        assert User.objects.get(email=cases[mode]["verifyEmail"]).email_verified
        assert not User.objects.filter(email__startswith=f"{mode}-moved").exists()
        assert not User.objects.filter(email__startswith=f"{mode}-user").exists()
    # The mail requests were queued for both addresses, known or not (their jobs say nothing).
    assert _jobs("auth.verification_email_resend") == _jobs("auth.password_reset_request")
    assert len(_jobs("auth.password_reset_request")) == 4
