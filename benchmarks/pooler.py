"""The session check and the users list through PgBouncer (transaction mode) against a direct
connection: one query's round trip, and requests per second through gunicorn."""

import os
import time
from dataclasses import dataclass
from statistics import median

import psycopg
from django.conf import settings

from auth_app.services import session_create
from platform_app.flows import user_onboard
from reliability.servers import LOAD_ENVIRONMENT, PGBOUNCER, PgBouncer, gunicorn, postgres_url

from .http import CONCURRENCY, WORKERS, _load
from .tables import markdown_table, text_table

ENDPOINTS = [
    ("GET /api/v1/auth/session", "/api/v1/auth/session"),
    ("GET /api/v1/users?limit=50 (users:read)", "/api/v1/users?limit=50"),
]
QUERIES = 2000
SKIPPED = "pgbouncer is not installed (make bench installs Debian's package as root with apt-get)"


@dataclass(frozen=True)
class PoolerRun:
    skipped: str = ""
    # microseconds per `SELECT 1`, one connection, autocommit: (direct, through PgBouncer)
    query_us: tuple[float, float] = (0.0, 0.0)
    # label, requests per second direct, direct with nothing kept prepared, and through
    # PgBouncer, and the errors through PgBouncer
    endpoints: tuple[tuple[str, float, float, float, int], ...] = ()
    seconds: float = 0.0
    rounds: int = 0


def _round_trip_us(url: str) -> float:
    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(100):
            conn.execute("SELECT 1")
        started = time.perf_counter()
        for _ in range(QUERIES):
            conn.execute("SELECT 1")
        return (time.perf_counter() - started) / QUERIES * 1e6


def pooler_run(*, seconds: float = 4.0, rounds: int = 2) -> PoolerRun:
    if PGBOUNCER is None:
        return PoolerRun(skipped=SKIPPED)
    db = settings.DATABASES["default"]
    # The app's own database name: the bench settings add "_bench" to it.
    base_name = db["NAME"].removesuffix("_bench")
    admin = user_onboard(email="pooler-bench@example.com", password=None, is_superuser=True)
    _session, token = session_create(user=admin)
    bearer = f"Bearer {token}"
    bouncer = PgBouncer.in_front_of(db, pool_size=WORKERS * CONCURRENCY)
    try:
        user, password = db.get("USER") or "postgres", db.get("PASSWORD") or ""
        query_us = (
            _round_trip_us(postgres_url(db, db["NAME"])),
            _round_trip_us(bouncer.url(db["NAME"], user=user, password=password)),
        )
        direct = {**os.environ, **LOAD_ENVIRONMENT, "DJANGO_SETTINGS_MODULE": "benchmarks.settings"}
        pooled = {
            **direct,
            "DATABASE_URL": bouncer.url(base_name, user=user, password=password),
            "DATABASE_DIRECT_URL": postgres_url(db, base_name),
        }
        results: dict[tuple[str, str], list[dict]] = {}
        # Direct with nothing kept prepared, as behind the pooler: what the pooler's hop costs
        # apart from the planning it brings back.
        unprepared = {**direct, "DATABASE_PREPARED_STATEMENTS": "0"}
        modes = (("direct", direct), ("unprepared", unprepared), ("pooled", pooled))
        for mode, environment in modes:
            with gunicorn(environment, workers=WORKERS) as app:
                for _label, path in ENDPOINTS:  # warm every worker's code paths and pool
                    _load(app + path, bearer, 1.0)
                for _ in range(rounds):
                    for label, path in ENDPOINTS:
                        results.setdefault((mode, label), []).append(
                            _load(app + path, bearer, seconds)
                        )
    finally:
        bouncer.close()

    def rate(mode: str, label: str) -> float:
        return median(r["ok"] / r["seconds"] for r in results[(mode, label)])

    endpoints = tuple(
        (
            label,
            rate("direct", label),
            rate("unprepared", label),
            rate("pooled", label),
            sum(r["errors"] for r in results[("pooled", label)]),
        )
        for label, _ in ENDPOINTS
    )
    return PoolerRun(query_us=query_us, endpoints=endpoints, seconds=seconds, rounds=rounds)


HEADER = (
    "",
    "direct",
    "direct, nothing kept prepared",
    "through PgBouncer",
    "PgBouncer / direct",
    "errors through PgBouncer",
)


def _rows(run: PoolerRun) -> list[tuple[str, ...]]:
    direct_us, pooled_us = run.query_us
    rows = [
        (
            "SELECT 1 round trip (µs)",
            f"{direct_us:.0f}",
            "-",
            f"{pooled_us:.0f}",
            f"{pooled_us / direct_us:.2f}",
            "-",
        )
    ]
    for label, direct, unprepared, pooled, errors in run.endpoints:
        rows.append(
            (
                f"{label} (req/s)",
                f"{direct:.0f}",
                f"{unprepared:.0f}",
                f"{pooled:.0f}",
                f"{pooled / direct:.2f}",
                str(errors),
            )
        )
    return rows


def _about(run: PoolerRun) -> str:
    return (
        f"gunicorn with {WORKERS} workers, {CONCURRENCY} clients, median of {run.rounds} rounds of"
        f" {run.seconds:g} s per endpoint; PgBouncer in transaction mode with a pool of"
        f" {WORKERS * CONCURRENCY} server connections, the app behind it with"
        " DATABASE_DIRECT_URL set (hot reads as plain SQL, pooled connections checked before use)"
    )


def text(run: PoolerRun) -> str:
    if run.skipped:
        return f"PgBouncer: skipped, {run.skipped}"
    return "\n".join(
        ["PgBouncer against a direct connection", *text_table(HEADER, _rows(run)), _about(run)]
    )


def markdown(run: PoolerRun) -> str:
    lines = ["## PgBouncer against a direct connection", ""]
    if run.skipped:
        return "\n".join([*lines, f"Skipped: {run.skipped}.", ""])
    return "\n".join([*lines, f"{_about(run)}.", "", *markdown_table(HEADER, _rows(run)), ""])
