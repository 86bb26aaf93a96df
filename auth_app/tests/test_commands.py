"""prune_sessions and prune_verifications."""

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from auth_app.models import PasskeyChallenge, Session, Verification
from auth_app.passkeys import passkey_registration_options
from auth_app.services import session_create, verification_consume, verification_create
from platform_app.flows import user_onboard

pytestmark = pytest.mark.django_db


def test_prune_sessions_deletes_only_expired_sessions():
    user = user_onboard(email="ada@example.com")
    live, _ = session_create(user=user)
    dead, _ = session_create(user=user)
    Session.objects.filter(pk=dead.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    out = io.StringIO()
    call_command("prune_sessions", stdout=out)

    assert list(Session.objects.values_list("pk", flat=True)) == [live.pk]
    assert "Deleted 1 expired sessions" in out.getvalue()


def test_prune_verifications_deletes_used_and_expired_tokens_only():
    user = user_onboard(email="ada@example.com")  # one live verification token
    live = Verification.objects.get(user=user)
    _v, used = verification_create(user=user, purpose="password-reset", ttl=timedelta(hours=1))
    verification_consume(token=used, purpose="password-reset")
    verification_create(user=user, purpose="other", ttl=timedelta(seconds=-1))

    options = passkey_registration_options(user=user)  # a live passkey challenge
    PasskeyChallenge.objects.create(
        purpose="authenticate", challenge_hash="0" * 64, expires_at=timezone.now()
    )

    call_command("prune_verifications", stdout=io.StringIO())

    assert list(Verification.objects.values_list("pk", flat=True)) == [live.pk]
    assert PasskeyChallenge.objects.get().purpose == "register" and options["challenge"]
