"""Soak: a fixed-rate locust run against gunicorn; throughput, latency, errors and memory."""

import csv
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from .restart import PASSWORD, _request
from .servers import ROOT, Postgres, app_environment, gunicorn, manage


@dataclass
class SoakReport:
    seconds: int
    users: int
    requests: int
    failures: int
    server_errors: int
    per_second: float
    p50_ms: float
    p99_ms: float
    rss_start_mib: float
    rss_end_mib: float
    rss_max_mib: float
    rss_quarters_mib: list[float]
    by_name: list[dict]


def _workers_rss(master_port: int) -> float:
    """Resident memory of the gunicorn processes serving `master_port`, in MiB."""
    total = 0
    for process in psutil.process_iter(["cmdline", "memory_info"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if "gunicorn" in cmdline and f"127.0.0.1:{master_port}" in cmdline:
            total += process.info["memory_info"].rss
            for child in process.children():
                total += child.memory_info().rss
    return total / 2**20


def run(*, seconds: int = 60, users: int = 10) -> SoakReport:
    postgres = Postgres()
    try:
        manage(postgres.url, "migrate", "--no-input")
        with gunicorn(app_environment(postgres.url), workers=2) as base:
            port = int(base.rsplit(":", 1)[1])
            admin_email = "soak-admin@example.com"
            status, body = _request(
                "POST", f"{base}/api/v1/auth/sign-up", {"email": admin_email, "password": PASSWORD}
            )
            assert status == 201, body
            manage(
                postgres.url,
                "shell",
                "-c",
                "from auth_app.models import User; from permissions_app.models import Role;"
                "from permissions_app.services import role_grant;"
                f"role_grant(user=User.objects.get(email='{admin_email}'),"
                " role=Role.objects.get(name='admin'))",
            )
            token = body["session"]["token"]
            with postgres.connect() as conn:
                role_id = conn.execute(
                    "SELECT id FROM permissions.roles WHERE name = 'auditor'"
                ).fetchone()[0]

            samples: list[float] = []
            done = threading.Event()

            def sample():
                while not done.is_set():
                    samples.append(_workers_rss(port))
                    done.wait(2)

            sampler = threading.Thread(target=sample)
            sampler.start()
            out = Path(tempfile.mkdtemp(prefix="sv-soak-"))
            try:
                subprocess.run(  # noqa: S603
                    [
                        sys.executable,
                        "-m",
                        "locust",
                        "-f",
                        str(ROOT / "reliability" / "locustfile.py"),
                        "--headless",
                        "--users",
                        str(users),
                        "--spawn-rate",
                        str(users),
                        "--run-time",
                        f"{seconds}s",
                        "--host",
                        base,
                        "--csv",
                        str(out / "soak"),
                        "--only-summary",
                        "--loglevel",
                        "ERROR",
                        "--admin-token",
                        token,
                        "--role-id",
                        role_id,
                    ],
                    check=False,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    timeout=seconds + 120,
                )
            finally:
                done.set()
                sampler.join()
            return _report(
                out / "soak_stats.csv", out / "soak_failures.csv", seconds, users, samples
            )
    finally:
        postgres.close()


def _report(stats: Path, failures: Path, seconds: int, users: int, rss: list[float]):
    rows = list(csv.DictReader(stats.open()))
    total = next(r for r in rows if r["Name"] == "Aggregated")
    server_errors = 0
    if failures.exists():
        for row in csv.DictReader(failures.open()):
            if "HTTPError('5" in row["Error"] or "50" in row["Error"][:20]:
                server_errors += int(row["Occurrences"])
    return SoakReport(
        seconds=seconds,
        users=users,
        requests=int(total["Request Count"]),
        failures=int(total["Failure Count"]),
        server_errors=server_errors,
        per_second=float(total["Requests/s"]),
        p50_ms=float(total["50%"]),
        p99_ms=float(total["99%"]),
        rss_start_mib=round(rss[0], 1) if rss else 0.0,
        rss_end_mib=round(rss[-1], 1) if rss else 0.0,
        rss_max_mib=round(max(rss), 1) if rss else 0.0,
        # The largest sample in each quarter of the run: a leak climbs, a warm-up levels off.
        rss_quarters_mib=[
            round(max(rss[i * len(rss) // 4 : (i + 1) * len(rss) // 4] or [0.0]), 1)
            for i in range(4)
        ],
        by_name=[
            {
                "name": r["Name"],
                "requests": int(r["Request Count"]),
                "failures": int(r["Failure Count"]),
                "p50_ms": float(r["50%"]),
                "p99_ms": float(r["99%"]),
            }
            for r in rows
            if r["Name"] != "Aggregated"
        ],
    )


if __name__ == "__main__":
    started = time.monotonic()
    print(run(seconds=20, users=6))
    print(f"{time.monotonic() - started:.0f} s")
