"""Requests per second through gunicorn over loopback, next to a bare DRF endpoint."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from statistics import median

from rest_framework.authtoken.models import Token

from auth_app.services import session_create
from platform_app.flows import user_onboard

ROOT = Path(__file__).resolve().parent.parent
WORKERS = 2
CONCURRENCY = 4
TARGET_RATIO = 0.8

# (label, path, which token it needs)
ENDPOINTS = [
    ("bare DRF view, DRF TokenAuthentication (floor)", "/bench/drf-token", "drf"),
    ("GET /api/v1/auth/session", "/api/v1/auth/session", "session"),
    ("GET /api/v1/users?limit=50 (users:read)", "/api/v1/users?limit=50", "session"),
]


@dataclass(frozen=True)
class EndpointRun:
    label: str
    per_second: float
    requests: int
    errors: int


@dataclass(frozen=True)
class HttpRun:
    workers: int
    concurrency: int
    seconds: float
    rounds: int
    endpoints: list[EndpointRun]

    @property
    def floor(self) -> float:
        return self.endpoints[0].per_second


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _gunicorn(port: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "sv_sdk.settings.bench",
        # Every request comes from 127.0.0.1: per-IP limits would turn the load into 429s.
        "SV_RATE_LIMITS_ENABLED": "false",
        "LOG_LEVEL": "ERROR",
    }
    return subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            "-m",
            "gunicorn",
            "sv_sdk.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(WORKERS),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )


def _wait_up(base: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{base}/", timeout=2)  # noqa: S310
            return
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("gunicorn did not start") from None
            time.sleep(0.2)


def _load(url: str, token: str, seconds: float) -> dict:
    out = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "benchmarks.load", url, token, str(CONCURRENCY), str(seconds)],
        cwd=ROOT,
        capture_output=True,
        check=True,
        timeout=seconds + 120,
    )
    return json.loads(out.stdout)


def http_run(*, seconds: float = 4.0, rounds: int = 3) -> HttpRun:
    """Each endpoint `rounds` times for `seconds`, interleaved; the median rate of each."""
    admin = user_onboard(email="http-bench@example.com", password=None, is_superuser=True)
    _session, session_token = session_create(user=admin)
    tokens = {
        "session": f"Bearer {session_token}",
        "drf": f"Token {Token.objects.create(user=admin).key}",
    }
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    process = _gunicorn(port)
    results: dict[str, list[dict]] = {label: [] for label, _, _ in ENDPOINTS}
    try:
        _wait_up(base, process)
        for _label, path, token in ENDPOINTS:  # warm every worker's code paths and pool
            _load(base + path, tokens[token], 1.0)
        for _ in range(rounds):
            for label, path, token in ENDPOINTS:
                results[label].append(_load(base + path, tokens[token], seconds))
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
    endpoints = [
        EndpointRun(
            label=label,
            per_second=median(r["ok"] / r["seconds"] for r in results[label]),
            requests=sum(r["ok"] + r["errors"] for r in results[label]),
            errors=sum(r["errors"] for r in results[label]),
        )
        for label, _, _ in ENDPOINTS
    ]
    return HttpRun(WORKERS, CONCURRENCY, seconds, rounds, endpoints)
