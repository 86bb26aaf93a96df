"""Liveness, readiness and metrics endpoints for load balancers, orchestrators and Prometheus.

They are answered by a middleware ahead of every other: a probe comes from an address
and with a Host that ALLOWED_HOSTS does not list, over plain http that production
would redirect, and it should cost no session lookup, no rate limit and no log line.
"""

import functools
import logging

import psycopg
from django.conf import settings
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.http import HttpResponse, JsonResponse

from sv_sdk import metrics
from sv_sdk.api.exceptions import PROBLEM_CONTENT_TYPE, problem_body

logger = logging.getLogger(__name__)


def _problem(*, status: int, code: str, title: str, detail: str, **extra) -> JsonResponse:
    body = problem_body(status_code=status, code=code, title=title, detail=detail)
    return JsonResponse({**body, **extra}, status=status, content_type=PROBLEM_CONTENT_TYPE)


def healthz(request) -> HttpResponse:
    """The process answers; nothing else is checked (no database access)."""
    return JsonResponse({"status": "ok"})


@functools.cache
def _migrations_on_disk() -> frozenset:
    # The code does not change while the process runs: read the graph once.
    return frozenset(MigrationLoader(None, ignore_no_migrations=True).graph.nodes)


def readiness_failures() -> dict[str, str]:
    """What keeps this process from serving: check name -> reason, empty when ready.

    One connection from the app's pool, taken within SV_READY_TIMEOUT, with every
    statement under it too. Reasons name the check, never a host, a user or a password.
    """
    timeout = settings.SV_READY_TIMEOUT
    pool = connection.pool
    try:
        pool.open()  # as Django does on first use; nothing when already open
        with pool.connection(timeout=timeout) as conn, conn.transaction():
            conn.execute(
                "SELECT set_config('statement_timeout', %s, true)", [f"{int(timeout * 1000)}ms"]
            )
            applied = set(conn.execute("SELECT app, name FROM django_migrations").fetchall())
            (heartbeat_age,) = conn.execute(metrics.WORKER_HEARTBEAT_AGE_SQL).fetchone()
    except psycopg.Error as exc:
        return {
            "database": f"The database did not answer within {timeout:g} s ({type(exc).__name__})."
        }
    failures = {}
    pending = _migrations_on_disk() - applied
    if pending:
        failures["migrations"] = f"{len(pending)} migration(s) not applied."
    if heartbeat_age is None:
        failures["worker"] = "No job worker is running."
    elif heartbeat_age > settings.SV_WORKER_HEARTBEAT_MAX_AGE:
        failures["worker"] = f"The job worker last reported {int(heartbeat_age)} s ago."
    return failures


def readyz(request) -> HttpResponse:
    """Ready: the database answers, no migration is pending, a job worker reports."""
    failures = readiness_failures()
    if not failures:
        return JsonResponse({"status": "ready"})
    detail = "; ".join(f"{name}: {reason}" for name, reason in sorted(failures.items()))
    logger.warning("not ready: %s", detail)
    return _problem(status=503, code="not_ready", title="Not ready", detail=detail, checks=failures)


def metrics_endpoint(request) -> HttpResponse:
    """Prometheus's text format, for a bearer of SV_METRICS_TOKEN or an allowed address."""
    if not metrics.metrics_allowed(request):
        response = _problem(
            status=401,
            code="not_authenticated",
            title="Not authenticated",
            detail="Scraping needs the metrics bearer token or an allowed address.",
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(metrics.exposition(), content_type=metrics.CONTENT_TYPE)


PROBES = {"/healthz": healthz, "/readyz": readyz, "/metrics": metrics_endpoint}


class ProbeMiddleware:
    """Answer GET/HEAD on the probe paths before any other middleware runs."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        view = PROBES.get(request.path_info)
        if view is None:
            return self.get_response(request)
        if request.method not in ("GET", "HEAD"):
            response = _problem(
                status=405,
                code="method_not_allowed",
                title="Method not allowed",
                detail="Probes answer GET and HEAD only.",
            )
            response["Allow"] = "GET, HEAD"
            return response
        return view(request)
