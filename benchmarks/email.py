"""Delivery throughput of the outbox: Procrastinate worker processes to a local SMTP server."""

import signal
import subprocess
import time
from collections import Counter
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction

from email_app.models import EmailSend
from email_app.services import email_queue, message_id_for
from reliability.mail import SmtpServer, start_workers

from .tables import markdown_table, text_table

WORKER_COUNTS = (1, 2)


@dataclass(frozen=True)
class DeliveryRun:
    workers: int
    sends: int
    seconds: float
    delivered_once: bool
    connections: int

    @property
    def per_second(self) -> float:
        return self.sends / self.seconds

    @property
    def per_worker(self) -> float:
        return self.per_second / self.workers


def _queue(count: int, tag: str) -> list[str]:
    with transaction.atomic():
        return [
            email_queue(
                to_email=f"bench-{tag}-{i}@example.com",
                category="account",
                template_key="welcome",
                context={"user_name": f"Reader {i}"},
            ).pk
            for i in range(count)
        ]


def _delivery_seconds(send_ids: list[str]) -> float:
    # From the first claim to the last recorded delivery: worker start-up is not counted.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT extract(epoch FROM max(sent_at) - min(claimed_at)) FROM email.email_sends"
            " WHERE id = ANY(%s)",
            [send_ids],
        )
        return float(cursor.fetchone()[0])


def _worker_count() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM procrastinate_workers")
        return cursor.fetchone()[0]


def _wait(condition, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def _drain(server: SmtpServer) -> None:
    # Emails queued earlier in the bench database (the onboarding run's) go
    # out first, so they neither slow nor pad the timed runs.
    for process in start_workers(1, email_url=server.url):
        _out, err = process.communicate(timeout=600)
        if process.returncode != 0:
            raise RuntimeError(f"email worker failed: {err.decode()[-2000:]}")


def delivery_run(*, sends: int, workers: int, server: SmtpServer) -> DeliveryRun:
    """Start `workers` worker processes, queue `sends` emails, time their delivery."""
    registered = _worker_count()
    connections_before = server.inbox.connections
    processes = start_workers(
        workers,
        email_url=server.url,
        concurrency=settings.PROCRASTINATE_WORKER_DEFAULTS["concurrency"],
        one_shot=False,
    )
    try:
        _wait(lambda: _worker_count() >= registered + workers, timeout=120, what="workers to start")
        send_ids = _queue(sends, tag=f"w{workers}")
        pending = EmailSend.objects.filter(
            pk__in=send_ids, status__in=[EmailSend.Status.QUEUED, EmailSend.Status.SENDING]
        )
        _wait(lambda: not pending.exists(), timeout=600, what="the emails to be delivered")
    finally:
        _stop(processes)
    statuses = Counter(EmailSend.objects.filter(pk__in=send_ids).values_list("status", flat=True))
    if statuses != {EmailSend.Status.SENT: sends}:
        raise RuntimeError(f"not every email was sent: {dict(statuses)}")
    expected = {message_id_for(pk) for pk in send_ids}
    received = Counter(i for i in server.inbox.message_ids() if i in expected)
    return DeliveryRun(
        workers=workers,
        sends=sends,
        seconds=_delivery_seconds(send_ids),
        delivered_once=set(received) == expected and set(received.values()) == {1},
        connections=server.inbox.connections - connections_before,
    )


def email_runs(*, sends: int) -> list[DeliveryRun]:
    server = SmtpServer()
    server.start()
    try:
        _drain(server)
        return [delivery_run(sends=sends, workers=n, server=server) for n in WORKER_COUNTS]
    finally:
        server.stop()


HEADER = (
    "workers",
    "emails",
    "seconds",
    "emails/s",
    "emails/s per worker",
    "SMTP connections",
    "each once",
)


def rows(runs: list[DeliveryRun]) -> list[tuple[str, ...]]:
    return [
        (
            str(run.workers),
            str(run.sends),
            f"{run.seconds:.2f}",
            f"{run.per_second:.0f}",
            f"{run.per_worker:.0f}",
            str(run.connections),
            "yes" if run.delivered_once else "NO",
        )
        for run in runs
    ]


_SETUP = (
    "Worker processes (`manage.py procrastinate worker` with the concurrency `make run` uses,"
    " started and listening before the emails are queued in one transaction) deliver over SMTP"
    " to an aiosmtpd server on 127.0.0.1 on connections they keep open; timed from the first"
    " claim to the last recorded delivery"
)


def text(runs: list[DeliveryRun]) -> str:
    return "\n".join(
        [
            "Email delivery throughput",
            _SETUP + ".",
            "",
            *text_table(HEADER, rows(runs)),
        ]
    )


def markdown(runs: list[DeliveryRun]) -> str:
    return "\n".join(
        [
            "## Email delivery",
            "",
            _SETUP + ". Each send is claimed (`sending`, committed), delivered, and recorded"
            ' `sent` with its audit row; "each once" checks the Message-IDs the server received.'
            " `--email-sends N` changes the number of emails per run.",
            "",
            *markdown_table(HEADER, rows(runs)),
            "",
        ]
    )
