"""Prometheus metrics: the objects code paths count with, and what `/metrics` serves.

Counters live in this process, or, with PROMETHEUS_MULTIPROC_DIR set, in memory-mapped
files in that directory that every process (gunicorn's workers, the job worker) writes
its own of and the scrape adds up. Values read from the database (outbox depth, the
worker's heartbeat) are computed when scraped, by collectors that apps register here.
"""

import hmac
import ipaddress
import os
import socket
from collections.abc import Iterable
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.core import GaugeMetricFamily

from sv_sdk import env as sv_env

_HOST = socket.gethostname()


def process_id(pid: int | None = None) -> str:
    """This process's name in the metrics directory: host and pid.

    The pid alone is not unique when processes of several containers share one
    directory (the Compose stack's app and worker); the host name is.
    """
    return f"{_HOST}-{os.getpid() if pid is None else pid}"


CONTENT_TYPE = CONTENT_TYPE_LATEST

if sv_env.METRICS_DIR:
    # Chosen before any metric below exists; prometheus_client would key files by pid.
    values.ValueClass = values.MultiProcessValue(process_identifier=process_id)
    # The metrics below open their files at once: a process started before gunicorn
    # (the worker, a command) must not fail on a directory nobody made yet.
    Path(sv_env.METRICS_DIR).mkdir(parents=True, exist_ok=True)

# Requests (sv_sdk.logs.RequestLogMiddleware) ----------------------------------------------
REQUESTS = Counter(
    "sv_http_requests", "HTTP requests answered, by route pattern", ["method", "route", "status"]
)
REQUEST_SECONDS = Histogram(
    "sv_http_request_duration_seconds",
    "Time to answer an HTTP request, by route pattern",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

# Identity ---------------------------------------------------------------------------------
SIGN_INS = Counter("sv_sign_ins", "Sign-ins checked, by result (success, failure)", ["result"])
SIGN_UPS = Counter("sv_sign_ups", "Users who signed up themselves")
LOCKOUTS = Counter("sv_lockouts", "Sign-in lockouts started (auth.locked_out)")
RATE_LIMIT_REFUSALS = Counter(
    "sv_rate_limit_refusals", "Requests refused by a rate limit or a lockout", ["scope"]
)
SESSIONS_CREATED = Counter("sv_sessions_created", "API sessions opened (sign-in, sign-up)")
SESSIONS_REVOKED = Counter("sv_sessions_revoked", "Sessions ended before expiry", ["reason"])

# Email and permissions --------------------------------------------------------------------
EMAILS = Counter("sv_emails", "Emails that reached each status", ["status"])
WEBHOOK_EVENTS = Counter(
    "sv_email_webhook_events", "Provider webhook events, by result", ["provider", "result"]
)
PERMISSION_CACHE_REBUILDS = Counter(
    "sv_permission_cache_rebuilds", "Permission cache rows recomputed"
)

# The connection pool, as each process last saw its own (summed over live processes).
POOL_SIZE = Gauge(
    "sv_db_pool_connections", "Connections the pools hold", multiprocess_mode="livesum"
)
POOL_IN_USE = Gauge(
    "sv_db_pool_connections_in_use", "Pooled connections lent out", multiprocess_mode="livesum"
)
POOL_WAITING = Gauge(
    "sv_db_pool_requests_waiting",
    "Requests waiting for a pooled connection",
    multiprocess_mode="livesum",
)
# Read replicas (sv_sdk.db.replicas): where each request's lag-tolerant reads went, and why.
REPLICA_READS = Counter(
    "sv_replica_reads",
    "Requests whose lag-tolerant reads a replica or the primary served, and why",
    ["served_by", "reason"],
)
POOL_TIMEOUTS = Counter(
    "sv_db_pool_timeouts", "Requests that got no pooled connection in time (or an error)"
)


def count_on_commit(counter, amount: float = 1, **labels) -> None:
    """Count an event once the transaction that records it commits (at once outside one)."""
    child = counter.labels(**labels) if labels else counter
    transaction.on_commit(lambda: child.inc(amount))


# Audit events that stand for a metric: counted where every path writes them, so the
# API, the admin and the commands all count without a line of their own.
_EMAIL_EVENTS = frozenset(
    {"email.queued", "email.suppressed", "email.sent", "email.failed"}
    | {"email.bounced", "email.complained"}
)


def _audit_increment(row) -> tuple | None:
    kind = row.event_type
    if kind == "auth.sign_in":
        return SIGN_INS.labels(result="success"), 1
    if kind == "auth.sign_in_failed":
        return SIGN_INS.labels(result="failure"), 1
    if kind == "auth.locked_out":
        return LOCKOUTS, 1
    if kind == "auth.sign_out":
        return SESSIONS_REVOKED.labels(reason="sign_out"), 1
    if kind == "session.revoked":
        reason = str(row.metadata.get("reason") or "other")
        return SESSIONS_REVOKED.labels(reason=reason), row.metadata.get("count", 1)
    if kind in _EMAIL_EVENTS:
        return EMAILS.labels(status=kind.removeprefix("email.")), 1
    return None


def count_audit_events(rows: Iterable) -> None:
    """Count what these audit rows stand for, once their transaction commits."""
    increments = [found for row in rows if (found := _audit_increment(row))]
    if increments:
        transaction.on_commit(lambda: [child.inc(amount) for child, amount in increments])


def pool_observe() -> None:
    """Publish this process's pool figures (after each request that used the database)."""
    # Without a connection in hand, reading `connection.pool` could create the pool, with
    # whatever settings are current (before the test database exists, say), to read zeros.
    if connection.connection is None:
        return
    pool = connection.pool
    if pool is None:
        return
    # pop_stats resets the counters it returns, so each failure is added once.
    stats = pool.pop_stats()
    POOL_SIZE.set(stats.get("pool_size", 0))
    POOL_IN_USE.set(stats.get("pool_size", 0) - stats.get("pool_available", 0))
    POOL_WAITING.set(stats.get("requests_waiting", 0))
    if stats.get("requests_errors"):
        POOL_TIMEOUTS.inc(stats["requests_errors"])


# Collectors read at scrape time -------------------------------------------------------------
_scrape_collectors: list = []


def register_scrape_collector(collector) -> None:
    """Add a collector whose values are read from the database when /metrics is scraped.

    Apps call it from `ready`. A collector yields nothing while the database is down,
    so the rest of a scrape still works (readiness reports the outage).
    """
    if collector in _scrape_collectors:
        return
    _scrape_collectors.append(collector)
    if not sv_env.METRICS_DIR:
        REGISTRY.register(collector)


class WorkerHeartbeatCollector:
    """Seconds since the freshest Procrastinate worker heartbeat (an indexed max)."""

    def describe(self):
        # Registering asks for the names; without this it would run the query.
        return [self._family()]

    def _family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "sv_worker_heartbeat_age_seconds",
            "Seconds since a job worker last reported (+Inf: none is running)",
        )

    def collect(self):
        try:
            with connection.cursor() as cursor:
                cursor.execute(WORKER_HEARTBEAT_AGE_SQL)
                (age,) = cursor.fetchone()
        except DatabaseError:
            return
        family = self._family()
        family.add_metric([], float("inf") if age is None else float(age))
        yield family


# Procrastinate's workers update procrastinate_workers.last_heartbeat (indexed) every
# few seconds while they run and delete their row when they stop.
WORKER_HEARTBEAT_AGE_SQL = (
    "SELECT extract(epoch FROM now() - max(last_heartbeat)) FROM procrastinate_workers"
)

register_scrape_collector(WorkerHeartbeatCollector())


def exposition() -> bytes:
    """Every metric in Prometheus's text format: all processes' counters, then the database's."""
    if not sv_env.METRICS_DIR:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=sv_env.METRICS_DIR)
    for collector in _scrape_collectors:
        registry.register(collector)
    return generate_latest(registry)


def metrics_allowed(request) -> bool:
    """A bearer of SV_METRICS_TOKEN, or a client in SV_METRICS_ALLOWED_NETWORKS."""
    token = settings.SV_METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(header.encode(), f"Bearer {token}".encode()):
        return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in network for network in settings.SV_METRICS_ALLOWED_NETWORKS)


# Gunicorn's hooks (sv_sdk.gunicorn_config) -------------------------------------------------
def multiprocess_start() -> None:
    """Before gunicorn forks: make the directory; drop live gauges of earlier processes."""
    if not sv_env.METRICS_DIR:
        return
    directory = Path(sv_env.METRICS_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("gauge_live*.db"):
        stale.unlink(missing_ok=True)


def process_exited(pid: int) -> None:
    """A gunicorn worker ended: its live gauges no longer count (its counters still do)."""
    if sv_env.METRICS_DIR:
        multiprocess.mark_process_dead(process_id(pid), sv_env.METRICS_DIR)
