"""Requests per second through gunicorn over loopback, next to a bare DRF endpoint."""

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from statistics import median

from rest_framework.authtoken.models import Token

from auth_app.services import session_create
from platform_app.flows import user_onboard
from reliability.servers import LOAD_ENVIRONMENT, ROOT, gunicorn

from .profile import Profile, profile_requests

WORKERS = 2
CONCURRENCY = 4
TARGET_RATIO = 0.8

# (label, path, which token it needs)
ENDPOINTS = [
    ("bare DRF view, DRF TokenAuthentication (floor)", "/bench/drf-token", "drf"),
    ("GET /api/v1/auth/session", "/api/v1/auth/session", "session"),
    ("GET /api/v1/users?limit=50 (users:read)", "/api/v1/users?limit=50", "session"),
]
# Profiled in-process after the load, to say where a request's time goes: the floor
# and the users list (issue 20's bound for its HTTP target).
PROFILED = (ENDPOINTS[0], ENDPOINTS[2])


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
    worker_class: str = "sync"
    profiles: list[Profile] = field(default_factory=list)  # labelled as in ENDPOINTS

    @property
    def floor(self) -> float:
        return self.endpoints[0].per_second


def worker_settings() -> str:
    """The gunicorn worker class (and threads) sv_sdk.gunicorn_config gives every server."""
    from sv_sdk import gunicorn_config

    worker = getattr(gunicorn_config, "worker_class", "sync")
    threads = getattr(gunicorn_config, "threads", 1)
    return f"{worker}, {threads} threads" if threads > 1 else worker


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
    # The workers load the bench settings too: the throwaway database, the floor's URL.
    environment = {
        **os.environ,
        **LOAD_ENVIRONMENT,
        "DJANGO_SETTINGS_MODULE": "benchmarks.settings",
    }
    results: dict[str, list[dict]] = {label: [] for label, _, _ in ENDPOINTS}
    with gunicorn(environment, workers=WORKERS) as base:
        for _label, path, token in ENDPOINTS:  # warm every worker's code paths and pool
            _load(base + path, tokens[token], 1.0)
        for _ in range(rounds):
            for label, path, token in ENDPOINTS:
                results[label].append(_load(base + path, tokens[token], seconds))
    # With the server stopped: in this process, with the settings the workers had.
    profiles = profile_requests(
        [(label, path, {"Authorization": tokens[token]}) for label, path, token in PROFILED]
    )
    endpoints = [
        EndpointRun(
            label=label,
            per_second=median(r["ok"] / r["seconds"] for r in results[label]),
            requests=sum(r["ok"] + r["errors"] for r in results[label]),
            errors=sum(r["errors"] for r in results[label]),
        )
        for label, _, _ in ENDPOINTS
    ]
    return HttpRun(WORKERS, CONCURRENCY, seconds, rounds, endpoints, worker_settings(), profiles)
