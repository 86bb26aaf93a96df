"""Delivery throughput of the outbox: Procrastinate worker processes to a local SMTP server."""

import math
import os
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

from .cpu import children, command_name, cpu_seconds, machine_busy_seconds, parent_pid
from .tables import markdown_table, text_table
from .targets import Target, missed

WORKER_COUNTS = (1, 2)
# Issue 20, target 3: emails delivered per second by two worker processes.
TARGET_WORKERS = 2
TARGET_PER_SECOND = 200.0


@dataclass(frozen=True)
class CpuUse:
    """CPU seconds used while the emails were delivered, by who used them."""

    workers: float
    smtp: float  # the SMTP server's thread, in this process
    postgres: float | None  # every process of the database server; None when it is not local
    machine: float  # every core's busy time, every process of the machine
    seconds: float  # the wall time they were counted over

    @property
    def ours(self) -> float:
        return self.workers + self.smtp + (self.postgres or 0.0)

    @property
    def cores_busy(self) -> float:
        """How many cores the delivery kept busy: the workers, the SMTP server, PostgreSQL."""
        return self.ours / self.seconds

    @property
    def cores_elsewhere(self) -> float:
        """How many cores the rest of the machine kept busy meanwhile."""
        return max(self.machine - self.ours, 0.0) / self.seconds


@dataclass(frozen=True)
class Phases:
    """Median wall milliseconds of one send's job, from the times the database recorded."""

    fetch_to_claim: float  # Procrastinate's fetch committed -> the claim starts
    claim_to_sent: float  # the claim transaction, the message built and sent over SMTP
    sent_to_finish: float  # the `sent` record and its audit row, then the job's finish
    fetch_to_finish: float  # the whole job


@dataclass(frozen=True)
class DeliveryRun:
    workers: int
    concurrency: int  # jobs each worker runs at once
    sends: int
    seconds: float
    delivered_once: bool
    connections: int
    cpu: CpuUse
    phases: Phases

    @property
    def per_second(self) -> float:
        return self.sends / self.seconds

    @property
    def per_worker(self) -> float:
        return self.per_second / self.workers

    def cpu_ms(self, seconds: float) -> float:
        """CPU seconds used over the run, as milliseconds per send."""
        return seconds / self.sends * 1000


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


# The job's fetch ("started") and finish ("succeeded") as Procrastinate recorded them,
# around the send's claimed_at (taken as the claim starts) and sent_at (taken after the
# SMTP exchange, before the record's round trip).
_PHASES_SQL = """
SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM s.claimed_at - started.at)),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM s.sent_at - s.claimed_at)),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM finished.at - s.sent_at)),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM finished.at - started.at))
FROM email.email_sends AS s
JOIN procrastinate_jobs AS job ON job.args ->> 'send_id' = s.id::text
JOIN procrastinate_events AS started ON started.job_id = job.id AND started.type = 'started'
JOIN procrastinate_events AS finished ON finished.job_id = job.id AND finished.type = 'succeeded'
WHERE s.id = ANY(%s)
"""


def _phases(send_ids: list[str]) -> Phases:
    with connection.cursor() as cursor:
        cursor.execute(_PHASES_SQL, [send_ids])
        # NULL when no job left its events (jobs deleted once done): not a number, not a crash.
        return Phases(
            *(float(value) * 1000 if value is not None else math.nan for value in cursor.fetchone())
        )


def _postgres_pids() -> list[int] | None:
    """The database server's processes when it runs on this machine (None otherwise)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (backend,) = cursor.fetchone()
    postmaster = parent_pid(backend)
    if postmaster is None or {command_name(backend), command_name(postmaster)} != {"postgres"}:
        return None  # not here: a server elsewhere, or a pid of another machine's numbering
    return [postmaster, *children(postmaster)]


class _CpuCounter:
    """CPU time from `start()` to `stop()`: the workers, the SMTP server, PostgreSQL, all."""

    def __init__(self, workers: list[subprocess.Popen]):
        self._workers = [p.pid for p in workers]

    def _read(self) -> tuple[float, float, dict[int, float] | None, float, float]:
        postgres = _postgres_pids()
        return (
            sum(cpu_seconds(pid) for pid in self._workers),
            # The SMTP server runs on its own thread of this process: all but this thread.
            time.process_time() - time.thread_time(),
            None if postgres is None else {pid: cpu_seconds(pid) for pid in postgres},
            machine_busy_seconds(),
            time.monotonic(),
        )

    def start(self) -> None:
        self._start = self._read()

    def stop(self) -> CpuUse:
        workers, smtp, postgres, machine, wall = self._read()
        workers0, smtp0, postgres0, machine0, wall0 = self._start
        return CpuUse(
            workers=workers - workers0,
            smtp=smtp - smtp0,
            postgres=None
            if postgres is None or postgres0 is None
            else sum(used - postgres0.get(pid, 0.0) for pid, used in postgres.items()),
            machine=machine - machine0,
            seconds=wall - wall0,
        )


def _worker_count() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM procrastinate_workers")
        return cursor.fetchone()[0]


def _wait(condition, *, timeout: float, what: str, every: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(every)


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
    concurrency = settings.PROCRASTINATE_WORKER_DEFAULTS["concurrency"]
    processes = start_workers(
        workers, email_url=server.url, concurrency=concurrency, one_shot=False
    )
    try:
        _wait(lambda: _worker_count() >= registered + workers, timeout=120, what="workers to start")
        cpu = _CpuCounter(processes)
        send_ids = _queue(sends, tag=f"w{workers}")
        # From the queueing's commit: the workers start on its notification.
        cpu.start()
        pending = EmailSend.objects.filter(
            pk__in=send_ids, status__in=[EmailSend.Status.QUEUED, EmailSend.Status.SENDING]
        )
        # Not too often: each look is a query PostgreSQL's count of CPU would take in.
        _wait(
            lambda: not pending.exists(), timeout=600, what="the emails to be delivered", every=0.1
        )
        used = cpu.stop()
    finally:
        _stop(processes)
    statuses = Counter(EmailSend.objects.filter(pk__in=send_ids).values_list("status", flat=True))
    if statuses != {EmailSend.Status.SENT: sends}:
        raise RuntimeError(f"not every email was sent: {dict(statuses)}")
    expected = {message_id_for(pk) for pk in send_ids}
    received = Counter(i for i in server.inbox.message_ids() if i in expected)
    return DeliveryRun(
        workers=workers,
        concurrency=concurrency,
        sends=sends,
        seconds=_delivery_seconds(send_ids),
        delivered_once=set(received) == expected and set(received.values()) == {1},
        connections=server.inbox.connections - connections_before,
        cpu=used,
        phases=_phases(send_ids),
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
    "CPU per email",
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
            f"{run.cpu_ms(run.cpu.ours):.1f} ms",
            str(run.connections),
            "yes" if run.delivered_once else "NO",
        )
        for run in runs
    ]


def _cpu_split(run: DeliveryRun) -> str:
    cpu = run.cpu
    postgres = (
        f"{run.cpu_ms(cpu.postgres):.1f} ms in PostgreSQL"
        if cpu.postgres is not None
        else "PostgreSQL not counted (not on this machine)"
    )
    return (
        f"{run.cpu_ms(cpu.ours):.1f} ms of CPU per email: {run.cpu_ms(cpu.workers):.1f} ms in"
        f" the worker processes, {run.cpu_ms(cpu.smtp):.1f} ms in the SMTP server, {postgres}"
    )


def time_goes(runs: list[DeliveryRun]) -> list[str]:
    """Where a send's time went in each run: CPU by process, and a job's wall time by phase."""
    lines = []
    for run in runs:
        phases = run.phases
        lines.append(
            f"{run.workers} worker{'s' if run.workers > 1 else ''}: {_cpu_split(run)};"
            f" {run.cpu.cores_busy:.2f} cores busy with it, {run.cpu.cores_elsewhere:.2f} with"
            f" the rest of the machine. A job (median) {phases.fetch_to_finish:.1f} ms:"
            f" {phases.fetch_to_claim:.1f} ms from Procrastinate's fetch to the claim,"
            f" {phases.claim_to_sent:.1f} ms claiming, building and handing the message over"
            f" SMTP, {phases.sent_to_finish:.1f} ms recording `sent` with its audit row and"
            " finishing the job."
        )
    return lines


def target(runs: list[DeliveryRun], cores: int | None = None) -> Target:
    """Issue 20's target for two workers, with what bounds the rate when it is missed."""
    run = next(r for r in runs if r.workers == TARGET_WORKERS)
    cores = cores or os.cpu_count() or 1
    ceiling = cores / run.cpu.ours * run.sends
    busy = run.cpu.cores_busy + run.cpu.cores_elsewhere
    slots = run.workers * run.concurrency
    in_flight = run.per_second * run.phases.fetch_to_finish / 1000
    bound = (
        f"{'CPU' if busy >= 0.9 * cores else 'not CPU alone'}. {_cpu_split(run)}; at"
        f" {run.per_second:.0f} emails/s that kept {run.cpu.cores_busy:.2f} of the machine's"
        f" {cores} cores busy (the rest of the machine {run.cpu.cores_elsewhere:.2f}), and"
        f" {cores} cores at this CPU per email deliver at most {ceiling:.0f}/s. Jobs in flight"
        f" averaged {in_flight:.1f} of {slots}, each {run.phases.fetch_to_finish:.1f} ms from"
        " fetch to finish (median)"
    )
    single = [r for r in runs if r.workers == 1]
    return Target(
        f"email delivery, {TARGET_WORKERS} workers",
        f"{run.per_second:.0f} emails/s",
        f">= {TARGET_PER_SECOND:g} emails/s",
        f"1 worker {single[0].per_second:.0f} emails/s" if single else "",
        run.per_second >= TARGET_PER_SECOND,
        value=run.per_second,
        goal=TARGET_PER_SECOND,
        higher_is_better=True,
        bound=bound,
    )


def verdict(runs: list[DeliveryRun]) -> str:
    """The target line: met, or missed by how much and what bounds it."""
    goal = target(runs)
    if goal.met:
        return f"Target: {goal.what}: {goal.measured} against {goal.target}, met."
    return f"Target MISSED: {missed([goal])[0]}."


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
            "",
            verdict(runs),
            "Where an email's time goes, measured in the same runs:",
            *(f"  {line}" for line in time_goes(runs)),
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
            f"- {verdict(runs)}",
            *(f"- {line}" for line in time_goes(runs)),
            "- CPU is read from /proc for the worker processes, the SMTP server's thread and"
            " every process of the database server, from the queueing's commit until the last"
            " email is recorded; a job's phases come from Procrastinate's `started` and"
            " `succeeded` events around the send's `claimed_at` and `sent_at`.",
            "",
        ]
    )
