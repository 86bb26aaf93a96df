"""Delivery to a real SMTP server: exactly once, retried while the server is down, recoverable."""

import asyncio
import time
from collections import Counter
from urllib.parse import urlparse

import pytest
from django.db import connection, transaction

from audit_app.models import AuditLog
from conftest import run_worker
from email_app import connections, services
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


# Kept connections (email_app/connections.py) --------------------------------------------


def message_id_counts(smtp) -> Counter:
    return Counter(smtp.inbox.message_ids())


def test_one_worker_delivers_a_stream_of_emails_over_one_smtp_connection(smtp):
    sends = queue(30)

    run_worker()

    assert smtp.inbox.connections == 1
    assert message_id_counts(smtp) == Counter({f"<{s.pk}@localhost>": 1 for s in sends})
    assert {(s.status, s.attempts) for s in sends_of(sends)} == {("sent", 1)}


def test_two_concurrent_workers_deliver_each_email_once_over_a_few_kept_connections(smtp):
    sends = queue(300)

    workers = start_workers(2, email_url=smtp.url, concurrency=4)
    errors = [worker.communicate(timeout=120)[1].decode() for worker in workers]

    assert [w.returncode for w in workers] == [0, 0], errors
    assert message_id_counts(smtp) == Counter({f"<{s.pk}@localhost>": 1 for s in sends})
    assert {(s.status, s.attempts) for s in sends_of(sends)} == {("sent", 1)}
    # At most one connection per concurrent delivery, not one per email.
    assert 2 <= smtp.inbox.connections <= 2 * 4


def test_a_crash_mid_stream_leaves_only_that_email_in_doubt_and_the_rest_go_out(
    smtp, settings, monkeypatch
):
    recorded = []
    record_success = delivery._record_success

    def crash_on_the_third(send, message):
        recorded.append(send.pk)
        if len(recorded) == 3:
            raise WorkerCrashed()
        record_success(send, message)

    monkeypatch.setattr(delivery, "_record_success", crash_on_the_third)
    sends = queue(6)
    run_worker()
    monkeypatch.undo()

    first = {s.pk: s.status for s in sends_of(sends)}
    crashed = recorded[2]
    assert first == {s.pk: "sending" if s.pk == crashed else "sent" for s in sends}
    # The connection that carried the doubtful email is not used again.
    assert smtp.inbox.connections == 2

    settings.SV_EMAIL_SENDING_TIMEOUT = 0
    assert services.email_recover_stalled() == 1
    run_worker()

    assert {(s.status, s.attempts) for s in sends_of(sends) if s.pk != crashed} == {("sent", 1)}
    assert EmailSend.objects.get(pk=crashed).status == "sent"
    assert message_id_counts(smtp) == Counter(
        {f"<{s.pk}@localhost>": 2 if s.pk == crashed else 1 for s in sends}
    )


def test_a_timeout_mid_stream_defers_that_email_as_maybe_sent_and_the_rest_go_out(smtp, settings):
    settings.SV_EMAIL_RETRY_BASE_SECONDS = 60
    settings.EMAIL_TIMEOUT = 1
    accept = smtp.inbox.handle_DATA
    seen = []

    async def stall_on_the_second(server, session, envelope):
        seen.append(1)
        if len(seen) == 2:
            await asyncio.sleep(2)  # past the client's timeout
        return await accept(server, session, envelope)

    smtp.inbox.handle_DATA = stall_on_the_second
    sends = queue(5)
    run_worker()

    first = sends_of(sends)
    assert Counter(s.status for s in first) == {"sent": 4, "deferred": 1}
    (doubtful,) = [s for s in first if s.status == "deferred"]
    assert doubtful.last_error.startswith("timed out, the message may have been sent")
    assert smtp.inbox.connections == 2

    make_retries_due()
    run_worker()

    assert {s.status for s in sends_of(sends)} == {"sent"}
    # Only the email in doubt may have arrived twice (whether the server kept the
    # first copy is its business), both times with the same Message-ID.
    counts = message_id_counts(smtp)
    assert counts[f"<{doubtful.pk}@localhost>"] in (1, 2)
    assert {counts[f"<{s.pk}@localhost>"] for s in first if s.pk != doubtful.pk} == {1}
    assert set(counts) == {f"<{s.pk}@localhost>" for s in sends}


def test_a_kept_connection_the_server_dropped_is_replaced_before_the_next_email(smtp, monkeypatch):
    queue(1, prefix="first")
    run_worker()
    smtp.stop()
    smtp.start()  # a restart: the kept connection is dead
    monkeypatch.setattr(connections, "PROBE_AFTER_SECONDS", 0)
    (second,) = queue(1, prefix="second")

    run_worker()

    second.refresh_from_db()
    assert (second.status, second.attempts) == (EmailSend.Status.SENT, 1)
    assert smtp.inbox.connections == 2
