"""Read replicas: what the router adds to a request, and how far a replica trails the sign-ups.

A streaming replica of the bench server is made with `pg_basebackup -R` (reliability.replica);
the section is skipped, with the reason, where that cannot be done.
"""

import statistics
import threading
import time
from dataclasses import dataclass, field

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, router
from django.http import HttpResponse
from django.test import RequestFactory

from sv_sdk.db import replicas

from .tables import markdown_table, text_table

ALIAS = "replica_bench"


@dataclass
class ReplicaRun:
    skipped: str = ""
    # Microseconds one request spends in the middleware and router, above no replicas at all.
    overhead_us: dict[str, float] = field(default_factory=dict)
    signups: int = 0
    seconds: float = 0.0
    wal_bytes_per_signup: float = 0.0
    lag_ms: dict[str, float] = field(default_factory=dict)
    samples: int = 0
    # Inputs of docs/scaling.md's capacity figures: p50 ms in this process, round trip included.
    session_check_ms: float = 0.0
    users_page_ms: float = 0.0


def _per_call_us(call, n: int) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(n):
            call()
        best = min(best, (time.perf_counter() - started) / n * 1e6)
    return best


def _router_overhead() -> dict[str, float]:
    from auth_app.models import User

    @replicas.lag_tolerant
    def view(request):
        router.db_for_read(User)
        return HttpResponse()

    middleware = replicas.ReadYourWritesMiddleware(view)
    requests = RequestFactory()
    get, post = requests.get("/"), requests.post("/")
    settings.SV_DATABASE_REPLICAS = []
    base_get = _per_call_us(lambda: middleware(get), 5000)
    base_post = _per_call_us(lambda: middleware(post), 2000)
    settings.SV_DATABASE_REPLICAS = [ALIAS]
    replicas.MONITOR.recheck()
    middleware(get)  # the first check of the replica, outside the timing
    replayed = replicas.MONITOR.in_rotation()[0][1]
    covered = requests.get("/", HTTP_SV_READ_AFTER=replicas.lsn_text(replayed))
    # Newer than the last check: the router asks the replica where its replay is now.
    newer = requests.get("/", HTTP_SV_READ_AFTER=replicas.lsn_text(replayed + 1))
    return {
        "a read, no write of its own to wait for": _per_call_us(lambda: middleware(get), 5000)
        - base_get,
        "a read after a write the last check already covers": _per_call_us(
            lambda: middleware(covered), 5000
        )
        - base_get,
        "a read after a newer write (asks the replica)": _per_call_us(
            lambda: middleware(newer), 1000
        )
        - base_get,
        "a write (reads the primary's WAL position)": _per_call_us(lambda: middleware(post), 1000)
        - base_post,
    }


def _p50_ms(call, n: int) -> float:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def _primary_costs() -> tuple[float, float]:
    """The session check (on the primary always) and a users page of 50 (what replicas take)."""
    from auth_app.selectors import session_get_by_token
    from auth_app.services import session_create
    from platform_app.api.users import listed
    from platform_app.flows import user_onboard

    user = user_onboard(email="replica-bench-session@example.com")
    _session, token = session_create(user=user)
    check = _p50_ms(lambda: session_get_by_token(token=token), 2000)
    page = _p50_ms(lambda: listed(limit=50), 300)
    return check, page


def _lag_under_signups(replica, seconds: float, writers: int) -> tuple[int, int, list, list]:
    """Sign users up from `writers` threads for `seconds` while sampling both servers' WAL
    positions; return (sign-ups, WAL bytes written, primary samples, replica samples)."""
    from platform_app.flows import user_onboard

    primary = psycopg.connect(**replicas.connect_params(settings.DATABASES["default"]))
    primary.autocommit = True
    standby = replica.connect(settings.DATABASES["default"]["NAME"])
    stop = threading.Event()
    done = [0] * writers

    def write(number: int) -> None:
        try:
            while not stop.is_set():
                # No password: the hash runs on the app servers, not the database.
                user_onboard(email=f"replica-{number}-{done[number]}@example.com")
                done[number] += 1
        finally:
            connections.close_all()

    def position(conn, function: str) -> int:
        return replicas.lsn_value(conn.execute(f"SELECT {function}()::text").fetchone()[0])

    on_primary, on_replica = [], []
    start = position(primary, "pg_current_wal_lsn")
    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        on_primary.append((time.monotonic(), position(primary, "pg_current_wal_lsn")))
        on_replica.append((time.monotonic(), position(standby, "pg_last_wal_replay_lsn")))
        time.sleep(0.01)
    stop.set()
    for thread in threads:
        thread.join()
    end = position(primary, "pg_current_wal_lsn")
    # Until the replica has replayed the last sample, so every sample has its answer.
    while on_replica[-1][1] < on_primary[-1][1]:
        on_replica.append((time.monotonic(), position(standby, "pg_last_wal_replay_lsn")))
        time.sleep(0.01)
    primary.close()
    standby.close()
    return sum(done), end - start, on_primary, on_replica


def _lags(on_primary: list, on_replica: list) -> list[float]:
    """For each primary sample, the time until the replica had replayed that position."""
    lags, j = [], 0
    for at, wanted in on_primary:
        while j < len(on_replica) and (on_replica[j][0] < at or on_replica[j][1] < wanted):
            j += 1
        if j == len(on_replica):
            break
        lags.append(on_replica[j][0] - at)
    return lags


def replicas_run(*, seconds: float = 8.0, writers: int = 2) -> ReplicaRun:
    from reliability.replica import ReplicaUnavailable, StreamingReplica

    params = replicas.connect_params(settings.DATABASES["default"])
    params.pop("dbname", None)
    try:
        replica = StreamingReplica(params)
    except ReplicaUnavailable as exc:
        return ReplicaRun(skipped=str(exc))
    saved = settings.SV_DATABASE_REPLICAS
    connections.settings[ALIAS] = {
        **connections.settings[DEFAULT_DB_ALIAS],
        "HOST": replica.host,
        "PORT": str(replica.port),
        "OPTIONS": {"connect_timeout": settings.SV_REPLICA_CONNECT_TIMEOUT},
        "CONN_MAX_AGE": 600,
    }
    try:
        overhead = _router_overhead()
        settings.SV_DATABASE_REPLICAS = saved
        signups, wal, on_primary, on_replica = _lag_under_signups(replica, seconds, writers)
        session_check, users_page = _primary_costs()
    finally:
        settings.SV_DATABASE_REPLICAS = saved
        connections[ALIAS].close()
        del connections.settings[ALIAS]
        replica.close()
    lags = sorted(lag * 1000 for lag in _lags(on_primary, on_replica))
    return ReplicaRun(
        overhead_us=overhead,
        signups=signups,
        seconds=seconds,
        wal_bytes_per_signup=wal / max(signups, 1),
        lag_ms={
            "p50": statistics.median(lags),
            "p99": lags[int(len(lags) * 0.99) - 1],
            "max": lags[-1],
        },
        samples=len(lags),
        session_check_ms=session_check,
        users_page_ms=users_page,
    )


def _overhead_rows(result: ReplicaRun) -> list[list[str]]:
    return [(name, f"{value:.1f}") for name, value in result.overhead_us.items()]


def _load_line(result: ReplicaRun) -> str:
    rate = result.signups / result.seconds
    lag = result.lag_ms
    return (
        f"{result.signups} sign-ups in {result.seconds:.0f} s ({rate:.0f}/s),"
        f" {result.wal_bytes_per_signup / 1024:.1f} KiB of WAL each; replica lag over"
        f" {result.samples} samples: p50 {lag['p50']:.1f} ms, p99 {lag['p99']:.1f} ms,"
        f" max {lag['max']:.1f} ms. Costs behind the capacity figures (p50, round trip"
        f" included): the session check {result.session_check_ms:.3f} ms, a users page of 50"
        f" {result.users_page_ms:.3f} ms"
    )


def text(result: ReplicaRun) -> str:
    if result.skipped:
        return f"Read replicas: skipped ({result.skipped})"
    return "\n".join(
        [
            "Read replicas: router overhead per request (us, above no replicas)",
            *text_table(("request", "us"), _overhead_rows(result)),
            _load_line(result),
        ]
    )


def markdown(result: ReplicaRun) -> str:
    lines = ["## Read replicas", ""]
    if result.skipped:
        return "\n".join([*lines, f"Skipped: {result.skipped}.", ""])
    return "\n".join(
        [
            *lines,
            "A streaming replica made with `pg_basebackup -R` from the bench server."
            " What the read-your-writes middleware and the router add to one request, above"
            " the same request with no replica configured (microseconds; docs/scaling.md):",
            "",
            *markdown_table(("request", "µs"), _overhead_rows(result)),
            "",
            "Under the sign-up load (`user_onboard` without a password hash, from two"
            " threads), the time from the"
            " primary writing a WAL position until the replica had replayed it, sampled about every"
            f" 10 ms: {_load_line(result)}.",
            "",
        ]
    )
