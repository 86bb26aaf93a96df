"""Issue 15, class 6: per-email limits.

Three forgot-password requests for bob from one address made bob's own request from another
address fail with 429, and one address could have about 4,300 mails a day sent to one victim.
Now the per-email limit counts per (email, client address), and a daily cap per recipient
bounds the mail anyone can request for one mailbox; past it the answer is still 202.
"""

import pytest
from django.test import Client
from rest_framework.test import APIClient

from audit_app.models import AuditLog
from auth_app.models import Verification
from conftest import run_worker
from email_app.models import EmailSend
from platform_app import flows
from platform_app.flows import user_onboard

PASSWORD = "correct horse battery staple"
_ips = iter(range(1, 250))


def api() -> APIClient:
    return APIClient(REMOTE_ADDR=f"198.51.100.{next(_ips)}")


def forgot(client, email):
    return client.post("/api/v1/auth/forgot-password", {"email": email}, format="json")


def resend(client, email):
    return client.post("/api/v1/auth/send-verification-email", {"email": email}, format="json")


@pytest.fixture
def bob():
    return user_onboard(email="bob@sec.test", password=PASSWORD, name="Bob")


@pytest.fixture
def small_cap(settings):
    settings.SV_RATE_LIMITS = {**settings.SV_RATE_LIMITS, "mail_per_recipient": (3, 86400)}


@pytest.mark.django_db
@pytest.mark.parametrize("request_mail", [forgot, resend])
def test_class6_requests_for_bob_from_one_address_do_not_block_bob_elsewhere(bob, request_mail):
    attacker = api()
    for _ in range(3):
        assert request_mail(attacker, bob.email).status_code == 202
    assert request_mail(attacker, bob.email).status_code == 429

    assert request_mail(api(), bob.email).status_code == 202


@pytest.mark.django_db(transaction=True)
def test_class6_a_daily_cap_per_recipient_bounds_mail_from_many_addresses(small_cap, bob):
    answers = [forgot(api(), bob.email).status_code for _ in range(4)]
    answers += [resend(api(), bob.email).status_code for _ in range(2)]
    run_worker()

    # Every request got the same answer; the mailbox got three mails, not six.
    assert answers == [202] * 6
    requested = EmailSend.objects.filter(to_email=bob.email).exclude(
        pk=EmailSend.objects.filter(to_email=bob.email).earliest("created_at").pk  # sign-up's
    )
    assert requested.count() == 3
    assert {send.template.key for send in requested} == {"reset-password"}


@pytest.mark.django_db
def test_class6_past_the_cap_no_new_reset_token_replaces_the_mailed_one(small_cap, bob):
    for _ in range(3):
        flows.password_reset_request(email=bob.email)
    mailed = Verification.objects.get(user=bob, identifier__startswith="password-reset:")

    flows.password_reset_request(email=bob.email)

    assert Verification.objects.get(user=bob, identifier__startswith="password-reset:") == mailed
    last = AuditLog.objects.filter(
        event_type="user.password_reset_requested", user_id=bob.pk
    ).latest("id")
    assert last.metadata == {"mail": "daily_cap_reached"}


@pytest.mark.django_db
def test_class6_the_admin_resend_action_counts_only_mail_it_queued(settings, bob):
    settings.SV_RATE_LIMITS = {**settings.SV_RATE_LIMITS, "mail_per_recipient": (1, 86400)}
    root = user_onboard(email="root@sec.test", password=PASSWORD, is_superuser=True)
    client = Client()
    client.force_login(root)

    def action():
        return client.post(
            "/admin/auth_app/user/",
            {"action": "resend_verification", "_selected_action": [bob.pk]},
            follow=True,
        )

    first, second = action(), action()

    assert b"Queued 1 verification email(s)" in first.content
    assert b"Queued 0 verification email(s)" in second.content
    assert EmailSend.objects.filter(user=bob, template__key="verify-email").count() == 2
