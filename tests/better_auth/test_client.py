"""better-auth's official client, unchanged, against a live sv_sdk (gunicorn): every call of
the compatible API in cookie and bearer mode, and its error codes (client.test.mjs)."""

import json
import subprocess
from datetime import timedelta

import pytest
from django.db import connection

from auth_app import mfa
from auth_app.models import User
from auth_app.services import EMAIL_VERIFICATION, PASSWORD_RESET, verification_create
from platform_app.flows import user_onboard
from reliability.servers import app_environment, database_url, gunicorn
from tests.oidc.conftest import PASSWORD as PROVIDER_PASSWORD
from tests.oidc.conftest import oidc_provider  # noqa: F401 (the fixture)

from . import HERE

FRONT = "http://front.example"


def _cases(provider) -> dict:
    """Per mode, a user whose verification link and one whose reset link the client follows,
    and two users at the OpenID Provider: one signs in with it, one links it."""
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
            **{
                who: {"email": email, "login": provider.add_account(email=email)}
                for who, email in (
                    ("social", f"{mode}-social@example.com"),
                    ("linked", f"{mode}-linked-elsewhere@example.com"),
                )
            },
        }
    return cases


def _jobs(task: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT args->>'email' FROM procrastinate_jobs WHERE task_name = %s", [task])
        return sorted(row[0] for row in cursor.fetchall())


@pytest.mark.django_db(transaction=True)
def test_the_official_client_works_unchanged_in_cookie_and_bearer_mode(node, oidc_provider):  # noqa: F811
    cases = _cases(oidc_provider)
    # The provider sends the browser back to SV_PUBLIC_URL, the front end (which forwards
    # /api to sv_sdk; the test does that forwarding).
    client = oidc_provider.register([f"{FRONT}/api/v1/auth/oauth/test/callback"])
    provider = oidc_provider.settings(
        client_id=client["client_id"], client_secret=client["client_secret"]
    )
    environment = {
        **app_environment(database_url()),
        "SV_TRUSTED_ORIGINS": FRONT,
        "SV_PUBLIC_URL": FRONT,
        "BETTER_AUTH_SECRET": "client-test-secret-0123456789-not-a-real-one",
        "SV_MFA_ENFORCE": "false",
        "SV_OAUTH_PROVIDERS": json.dumps({"test": provider}),
    }
    with gunicorn(environment, workers=1) as base:
        run = subprocess.run(  # noqa: S603
            [node, "--test", "--test-concurrency=1", "client.test.mjs"],
            cwd=HERE,
            env={"PATH": environment["PATH"], "SV_URL": base, "SV_ORIGIN": FRONT,
                 "SV_CASES": json.dumps(cases), "SV_PROVIDER_PASSWORD": PROVIDER_PASSWORD},
            capture_output=True,
            text=True,
            timeout=300,
        )  # fmt: skip
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "# fail 0" in run.stdout and "# pass 50" in run.stdout, run.stdout[-2000:]

    # What the client cannot see: the server's side of the same calls.
    for mode in ("cookie", "bearer"):
        assert User.objects.get(email=cases[mode]["verifyEmail"]).email_verified
        assert not User.objects.filter(email__startswith=f"{mode}-moved").exists()
        assert not User.objects.filter(email__startswith=f"{mode}-user").exists()
    # The mail requests were queued for both addresses, known or not (their jobs say nothing).
    assert _jobs("auth.verification_email_resend") == _jobs("auth.password_reset_request")
    assert len(_jobs("auth.password_reset_request")) == 4
    # Social sign-in and linking went through sv_sdk's accounts: the social users were created
    # verified; the linked account was removed again; the second factor was turned off.
    for mode in ("cookie", "bearer"):
        social = User.objects.get(email=cases[mode]["social"]["email"])
        assert social.email_verified and not social.has_usable_password()
        assert social.accounts.count() == 1
        assert not User.objects.get(email=f"{mode}-linker@example.com").accounts.exists()
        assert not mfa.mfa_enabled(User.objects.get(email=f"{mode}-2fa@example.com"))
