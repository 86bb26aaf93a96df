"""Serve the web app with gunicorn and run a Procrastinate worker beside it."""

import os
import shutil
import signal
import subprocess
import sys

from django.conf import settings
from django.core.management.base import BaseCommand

from sv_sdk import env as sv_env


class Command(BaseCommand):
    help = "Run gunicorn (admin + API) and a background worker until interrupted."

    def add_arguments(self, parser):
        parser.add_argument(
            "--bind",
            default="127.0.0.1:8000",
            help="Address gunicorn binds (default 127.0.0.1:8000).",
        )
        parser.add_argument(
            "--workers", type=int, default=2, help="Gunicorn worker processes (default 2)."
        )
        parser.add_argument(
            "--stop-database",
            action="store_true",
            help="Stop the embedded PostgreSQL on exit, when DATABASE_URL is unset (default: off:"
            " it keeps running for the next start).",
        )

    def handle(self, *args, bind, workers, stop_database, **options):
        python = sys.executable
        # Both children keep their metrics in one directory, so /metrics adds up every
        # gunicorn worker and the job worker; a fresh one per run unless it is configured.
        env = dict(os.environ)
        if not sv_env.METRICS_DIR:
            metrics_dir = settings.SV_DATA_DIR / "metrics"
            shutil.rmtree(metrics_dir, ignore_errors=True)
            metrics_dir.mkdir(parents=True)
            env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        children = [
            subprocess.Popen(  # noqa: S603
                [
                    python,
                    "-m",
                    "gunicorn",
                    "--config",
                    "python:sv_sdk.gunicorn_config",
                    "--bind",
                    bind,
                    "--workers",
                    str(workers),
                ],
                env=env,
            ),
            subprocess.Popen(  # noqa: S603
                [python, "manage.py", "procrastinate", "worker"],
                env=env,
            ),
        ]
        self.stdout.write(f"Serving on http://{bind}/ (admin /admin/, API docs /api/docs/)")

        def stop(signum=None, frame=None):
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)

        # Installed explicitly: a process started in the background inherits SIGINT
        # ignored, and then Python would never turn Ctrl-C into KeyboardInterrupt.
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        # Returns when a child exits: after a signal, or when one dies on its own, in
        # which case the other is stopped too (half a service is worse than none).
        os.wait()
        stop()
        for child in children:
            try:
                # Both finish what they are doing first (SV_SHUTDOWN_TIMEOUT).
                child.wait(timeout=sv_env.SHUTDOWN_TIMEOUT + 5)
            except subprocess.TimeoutExpired:
                child.kill()
        if stop_database and not sv_env.DATABASE_URL:
            from sv_sdk.db.embedded import stop_server

            stop_server(settings.SV_DATA_DIR)
        self.stdout.write("Stopped.")
