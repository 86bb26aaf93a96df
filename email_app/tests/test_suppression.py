"""Suppression: soft bounces count in a window and expire; hard ones and complaints last."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit_app.models import AuditLog
from email_app import services
from email_app.models import EmailSend, EmailSuppression
from email_app.services import suppression

from .test_webhooks import Postmark, postmark_post, sent_send

pytestmark = pytest.mark.django_db

ADDRESS = "Full.Mailbox@Example.com"


class Clock:
    """The time the suppression rules see; moved by the test instead of sleeping."""

    def __init__(self):
        self.moment = timezone.now()

    def __call__(self):
        return self.moment

    def advance(self, **delta):
        self.moment += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(suppression, "now", clock)
    return clock


@pytest.fixture
def postmark(settings):
    Postmark().configure(settings)
    settings.SV_EMAIL_WEBHOOK_PROVIDERS = ["postmark"]
    settings.SV_EMAIL_SOFT_BOUNCE_LIMIT = 3
    settings.SV_EMAIL_SOFT_BOUNCE_WINDOW = 7 * 24 * 3600
    settings.SV_EMAIL_SOFT_BOUNCE_SUPPRESSION = 3 * 24 * 3600
    return Postmark()


_sent = iter(range(1_000_000))


def event(postmark, client, kind: str, send=None):
    """A new send to ADDRESS (unless given) and a Postmark event of `kind` about it."""
    if send is None:
        send = sent_send(provider="postmark", message_id=f"pm-s{next(_sent)}", to=ADDRESS)
    payload = postmark.event(kind, send.provider_message_id) | {"Email": ADDRESS}
    assert postmark_post(client, payload).status_code == 200
    send.refresh_from_db()
    return send


def deliverable() -> bool:
    send = services.email_queue(
        to_email=ADDRESS.lower(),
        category="marketing",
        template_key="welcome",
        context={"user_name": "R"},
    )
    return send.status == "queued"


def test_one_soft_bounce_is_recorded_on_the_send_but_does_not_suppress(client, postmark, clock):
    send = event(postmark, client, "soft_bounce")

    assert send.status == "soft_bounced"
    assert "452 4.2.2" in send.last_error
    assert AuditLog.objects.filter(event_type="email.soft_bounced", target_id=send.pk).exists()
    assert deliverable()


def test_a_soft_bounce_followed_by_a_delivery_leaves_the_address_deliverable(
    client, postmark, clock
):
    send = event(postmark, client, "soft_bounce")
    event(postmark, client, "delivered", send=send)
    clock.advance(hours=1)
    # Two more soft bounces: with the one before the delivery, that would be three.
    event(postmark, client, "soft_bounce")
    event(postmark, client, "soft_bounce")

    assert deliverable()
    assert not EmailSuppression.objects.exists()


def test_three_soft_bounces_in_the_window_suppress_until_the_configured_time_passes(
    client, postmark, clock
):
    event(postmark, client, "soft_bounce")
    clock.advance(days=2)
    event(postmark, client, "soft_bounce")
    assert deliverable()
    clock.advance(days=2)
    third = event(postmark, client, "soft_bounce")

    assert not deliverable()
    row = EmailSuppression.objects.get()
    assert (row.address, row.reason, row.send_id) == (ADDRESS.lower(), "soft_bounces", third.pk)
    assert row.expires_at == clock.moment + timedelta(days=3)
    assert "452 4.2.2" in row.detail
    (audit,) = AuditLog.objects.filter(event_type="email.address_suppressed")
    assert audit.metadata["reason"] == "soft_bounces"
    assert audit.metadata["expires_at"].endswith("Z")

    clock.advance(days=3, seconds=-1)
    assert not deliverable()
    clock.advance(seconds=2)
    assert deliverable()
    # A new soft bounce starts a new count: the three before the suppression are spent.
    event(postmark, client, "soft_bounce")
    assert deliverable()


def test_soft_bounces_spread_wider_than_the_window_never_suppress(client, postmark, clock):
    for _ in range(5):
        event(postmark, client, "soft_bounce")
        clock.advance(days=4)

    assert deliverable()
    assert not EmailSuppression.objects.exists()


def test_one_send_that_soft_bounces_again_and_again_counts_once(client, postmark, clock):
    send = event(postmark, client, "soft_bounce")
    event(postmark, client, "soft_bounce", send=send)
    event(postmark, client, "soft_bounce", send=send)

    assert deliverable()


def test_a_hard_bounce_suppresses_at_once_and_never_expires(client, postmark, clock):
    event(postmark, client, "hard_bounce")

    assert not deliverable()
    clock.advance(days=365)
    assert not deliverable()
    row = EmailSuppression.objects.get()
    assert (row.reason, row.expires_at) == ("hard_bounce", None)
    assert "550 5.1.1" in row.detail


def test_a_hard_bounce_makes_a_soft_bounce_suppression_permanent(client, postmark, clock):
    for _ in range(3):
        event(postmark, client, "soft_bounce")
    event(postmark, client, "hard_bounce")
    clock.advance(days=30)

    assert not deliverable()
    assert EmailSuppression.objects.get().reason == "hard_bounce"


def test_soft_bounces_do_not_shorten_a_complaint(client, postmark, clock):
    event(postmark, client, "complaint")
    for _ in range(3):
        event(postmark, client, "soft_bounce")
    clock.advance(days=30)

    assert not deliverable()
    assert EmailSuppression.objects.get().reason == "complaint"


def test_an_operator_lifts_a_suppression_and_it_is_audited(client, postmark, clock, user_with):
    operator = user_with("email:write")
    event(postmark, client, "complaint")
    row = EmailSuppression.objects.get()

    services.suppression_lift(suppression=row, actor=operator)

    assert deliverable()
    row.refresh_from_db()
    assert (row.lifted_by_id, row.lifted_at) == (operator.pk, clock.moment)
    audit = AuditLog.objects.get(event_type="email.suppression_lifted")
    assert (audit.actor_id, audit.target_id, audit.metadata["reason"]) == (
        operator.pk,
        row.pk,
        "complaint",
    )
    # Lifting twice changes nothing more.
    services.suppression_lift(suppression=row, actor=operator)
    assert AuditLog.objects.filter(event_type="email.suppression_lifted").count() == 1
    # The next complaint suppresses again, on the same row.
    event(postmark, client, "complaint")
    assert not deliverable()
    assert EmailSuppression.objects.get().lifted_at is None


def test_after_a_lift_soft_bounces_count_from_zero(client, postmark, clock):
    for _ in range(3):
        event(postmark, client, "soft_bounce")
    services.suppression_lift(suppression=EmailSuppression.objects.get(), actor=None)
    clock.advance(minutes=1)

    event(postmark, client, "soft_bounce")

    assert deliverable()


def test_a_queued_send_is_suppressed_at_claim_time_when_the_address_bounced_meanwhile(
    client, postmark, clock
):
    queued = services.email_queue(
        to_email=ADDRESS, category="product", template_key="welcome", context={"user_name": "R"}
    )
    event(postmark, client, "hard_bounce")

    services.email_deliver(send_id=queued.pk)

    queued.refresh_from_db()
    assert (queued.status, queued.last_error) == ("suppressed", "address suppressed (hard bounce)")


@pytest.mark.parametrize(
    "row",
    [
        {"address": "Upper@Example.com", "reason": "hard_bounce"},
        {"address": "a@example.com", "reason": "bored"},
        {"address": "a@example.com", "reason": "soft_bounces"},  # without an expiry
        {"address": "a@example.com", "reason": "complaint", "expires_at": timezone.now()},
    ],
)
def test_the_database_refuses_a_suppression_that_breaks_the_rules(row):
    with pytest.raises(IntegrityError), transaction.atomic():
        EmailSuppression.objects.create(suppressed_at=timezone.now(), **row)


def test_two_rows_for_one_address_are_refused():
    EmailSuppression.objects.create(
        address="a@example.com", reason="complaint", suppressed_at=timezone.now()
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        EmailSuppression.objects.create(
            address="a@example.com", reason="hard_bounce", suppressed_at=timezone.now()
        )


@pytest.mark.django_db(transaction=True)
def test_the_migration_keeps_every_address_that_bounced_or_complained_suppressed():
    from django.core.management import call_command

    try:
        call_command("migrate", "email_app", "0007", verbosity=0)
        for to, status in [
            ("Gone@Example.com", "bounced"),
            ("gone@example.com", "complained"),
            ("angry@example.com", "complained"),
            ("fine@example.com", "delivered"),
        ]:
            # As the outbox of 0007 held them (the services already need 0008's table).
            EmailSend.objects.create(
                to_email=to, category="product", subject="Hi", text_body="Hi", status=status
            )
    finally:
        call_command("migrate", "email_app", verbosity=0)

    rows = dict(EmailSuppression.objects.values_list("address", "reason"))
    assert set(rows) == {"gone@example.com", "angry@example.com"}
    assert rows["angry@example.com"] == "complaint"
    assert all(row.expires_at is None for row in EmailSuppression.objects.all())
    assert not deliverable_to("gone@example.com") and deliverable_to("fine@example.com")


def deliverable_to(address: str) -> bool:
    return services.suppression_active(to_email=address) is None
