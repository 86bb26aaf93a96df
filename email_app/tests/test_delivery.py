"""Delivery to a real SMTP server: exactly once, retried while the server is down, recoverable."""

import time
from collections import Counter
from urllib.parse import urlparse

import pytest
from django.db import connection, transaction

from audit_app.models import AuditLog
from conftest import run_worker
from email_app import services
from email_app.models import EmailPreference, EmailSend
from email_app.services import delivery
from email_app.tasks import email_deliver
from email_app.tests.factories import EmailSendFactory
from platform_app.flows import user_onboard
from reliability.mail import start_workers
from tests.support import api_client

pytestmark = pytest.mark.django_db(transaction=True)


def queue(n: int = 1, *, category: str = "product", user=None, prefix: str = "reader"):
    sends = []
    with transaction.atomic():
        for i in range(n):
            sends.append(
                EmailSendFactory(
                    to_email=f"{prefix}{i}@example.com",
                    category=category,
                    context={"user_name": f"Reader {i}"},
                    user=user,
                )
            )
    return sends


def sends_of(sends) -> list[EmailSend]:
    return list(EmailSend.objects.filter(pk__in=[s.pk for s in sends]).order_by("pk"))


def test_the_worker_delivers_over_smtp_and_records_the_message_id(smtp):
    (send,) = queue()

    run_worker()

    (message,) = smtp.inbox.messages
    assert message["To"] == "reader0@example.com"
    assert message["Subject"] == "Welcome aboard"
    assert message["Message-ID"] == f"<{send.pk}@localhost>"
    assert "Reader 0" in message.get_body(("plain",)).get_content()
    assert "Reader 0" in message.get_body(("html",)).get_content()
    send.refresh_from_db()
    assert send.status == EmailSend.Status.SENT
    assert (send.provider, send.provider_message_id) == ("smtp", f"<{send.pk}@localhost>")
    assert send.attempts == 1 and send.sent_at is not None
    assert AuditLog.objects.filter(event_type="email.sent", target_id=send.pk).exists()


def test_product_mail_carries_a_one_click_unsubscribe_link_that_works(smtp, settings):
    settings.SV_PUBLIC_URL = "https://id.example.org"
    user = user_onboard(email="reader0@example.com")
    queue(user=user)
    run_worker()

    by_subject = {m["Subject"]: m for m in smtp.inbox.messages}
    product = by_subject["Welcome aboard"]
    assert product["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = product["List-Unsubscribe"].strip().strip("<>")  # folded: the line is long
    assert url.startswith("https://id.example.org/api/v1/email/unsubscribe/")
    # Account mail (the verification email) is always sent and offers no unsubscribe.
    assert "List-Unsubscribe" not in by_subject["Confirm your email address"]

    parsed = urlparse(url)
    response = api_client(None).post(
        parsed.path,
        "List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )

    assert response.status_code == 200, response.content
    assert not EmailPreference.objects.get(user=user, category="product").subscribed


def make_retries_due() -> None:
    """Let time pass: every waiting delivery job becomes due now."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE procrastinate_jobs SET scheduled_at = now()"
            " WHERE status = 'todo' AND task_name = 'email.deliver'"
        )


def waits(sends) -> set[int]:
    """Seconds (rounded to tens) each deferred send waits before its next attempt."""
    return {
        round((s.scheduled_at - s.updated_at).total_seconds(), -1)
        for s in sends_of(sends)
        if s.status == "deferred"
    }


def test_delivery_that_dies_midway_is_retried_with_backoff_and_then_arrives_exactly_once(
    smtp, settings
):
    settings.SV_EMAIL_RETRY_BASE_SECONDS = 60
    sends = queue(10)
    smtp.inbox.refuse_from = 4  # the server starts failing after four messages

    run_worker()
    first = sends_of(sends)
    assert Counter(s.status for s in first) == {"sent": 4, "deferred": 6}
    assert all("421" in s.last_error for s in first if s.status == "deferred")
    assert waits(sends) == {60}
    run_worker()  # nothing is due yet: the backoff holds
    assert [(s.status, s.attempts) for s in sends_of(sends)] == [
        (s.status, s.attempts) for s in first
    ]

    smtp.stop()  # and then it is down altogether
    make_retries_due()
    run_worker()
    second = sends_of(sends)
    assert Counter(s.status for s in second) == {"sent": 4, "deferred": 6}
    assert {s.attempts for s in second if s.status == "deferred"} == {2}
    assert waits(sends) == {120}  # the wait doubles

    smtp.inbox.refuse_from = None
    smtp.start()  # back up, on the same port
    make_retries_due()
    run_worker()

    final = sends_of(sends)
    assert {s.status for s in final} == {"sent"}
    assert sorted(s.attempts for s in final) == [1] * 4 + [3] * 6
    ids = smtp.inbox.message_ids()
    assert sorted(ids) == sorted(f"<{s.pk}@localhost>" for s in sends)


def test_an_email_that_keeps_failing_ends_failed_and_audited_at_the_attempt_limit(smtp, settings):
    settings.SV_EMAIL_RETRY_BASE_SECONDS = 0
    settings.SV_EMAIL_MAX_ATTEMPTS = 3
    smtp.stop()
    (send,) = queue()

    run_worker()

    send.refresh_from_db()
    assert (send.status, send.attempts) == (EmailSend.Status.FAILED, 3)
    assert "Connection refused" in send.last_error or "Errno" in send.last_error
    failed = AuditLog.objects.get(event_type="email.failed", target_id=send.pk)
    assert failed.metadata["attempts"] == 3


def test_a_recipient_the_server_refuses_for_good_fails_without_retrying(smtp, settings):
    async def refuse_rcpt(server, session, envelope, address, rcpt_options):
        return "550 5.1.1 No such user"

    smtp.inbox.handle_RCPT = refuse_rcpt
    (send,) = queue()

    run_worker()

    send.refresh_from_db()
    assert (send.status, send.attempts) == (EmailSend.Status.FAILED, 1)
    assert "550" in send.last_error
    assert smtp.inbox.messages == []


class WorkerCrashed(Exception):
    pass


def test_a_crash_right_after_the_server_accepted_redelivers_with_the_same_message_id(
    smtp, settings, monkeypatch
):
    # The doubt window: the server took the message, the worker died before
    # recording it. After the lease the send goes out again, recognisably the same.
    def crash(send, message):
        raise WorkerCrashed()

    monkeypatch.setattr(delivery, "_record_success", crash)
    (send,) = queue()
    run_worker()
    send.refresh_from_db()
    assert send.status == EmailSend.Status.SENDING
    monkeypatch.undo()

    assert services.email_recover_stalled() == 0  # not before the lease runs out
    settings.SV_EMAIL_SENDING_TIMEOUT = 0
    assert services.email_recover_stalled() == 1
    run_worker()

    send.refresh_from_db()
    assert (send.status, send.attempts) == (EmailSend.Status.SENT, 2)
    assert smtp.inbox.message_ids() == [f"<{send.pk}@localhost>"] * 2


def test_a_send_recorded_as_sent_is_never_delivered_again(smtp, settings):
    (send,) = queue()
    run_worker()
    settings.SV_EMAIL_SENDING_TIMEOUT = 0

    services.email_recover_stalled()
    email_deliver.defer(send_id=send.pk)  # a stray duplicate job
    run_worker()

    assert smtp.inbox.message_ids() == [f"<{send.pk}@localhost>"]


def test_two_worker_processes_deliver_500_queued_emails_exactly_once(smtp):
    sends = queue(500)
    started = time.monotonic()

    workers = start_workers(2, email_url=smtp.url, concurrency=4)
    errors = [worker.communicate(timeout=60)[1].decode() for worker in workers]

    assert [w.returncode for w in workers] == [0, 0], errors
    counts = Counter(smtp.inbox.message_ids())
    assert len(counts) == 500
    assert set(counts.values()) == {1}
    assert set(counts) == {f"<{s.pk}@localhost>" for s in sends}
    with connection.cursor() as cursor:
        cursor.execute("SELECT status, attempts, count(*) FROM email.email_sends GROUP BY 1, 2")
        assert cursor.fetchall() == [("sent", 1, 500)]
    assert time.monotonic() - started < 60
