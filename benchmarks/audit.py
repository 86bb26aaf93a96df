"""Audit log: insert throughput with tamper evidence on and off, and queries at scale."""

import multiprocessing
import queue
import random
import time
from dataclasses import dataclass
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from . import progress
from .audit_writer import writer
from .onboarding import Latency, latency
from .tables import markdown_table, text_table

FILL_CHUNK = 500_000

# One year of activity, ids rising with time as they do in production. About 200
# events per user (so ~16 in any 30 days), 70% of them by the user themself.
SYNTHETIC_ROWS_SQL = """
INSERT INTO {table} (occurred_at, event_type, actor_id, user_id, target_type, target_id,
                     metadata, ip_address, user_agent, request_id, row_mac)
SELECT now() - interval '365 days' + g * (interval '365 days' / %(rows)s),
       (%(events)s::text[])[1 + g %% cardinality(%(events)s::text[])],
       CASE WHEN g %% 10 < 7 THEN u.id ELSE 'admin-' || (g %% 20) END,
       u.id,
       'user', u.id,
       jsonb_build_object('n', g),
       ('192.0.2.' || (g %% 250))::inet, 'bench/1.0', '', ''
FROM generate_series(%(first)s::bigint, %(last)s) AS g
CROSS JOIN LATERAL (
    SELECT '00000000-0000-7000-8000-' || lpad(((g * 7919) %% %(users)s)::text, 12, '0') AS id
) AS u
"""


def user_id(n: int) -> str:
    """The id SYNTHETIC_ROWS_SQL gives user number `n` (UUID-shaped, 36 characters)."""
    return f"00000000-0000-7000-8000-{n:012d}"


def users_for(rows: int) -> int:
    return max(rows // 200, 1)


def fill(rows: int) -> float:
    """Add `rows` synthetic audit rows, set-based, indexes rebuilt after; seconds taken."""
    from audit_app.models import EVENT_TYPES, AuditLog
    from audit_app.partitions import secondary_indexes
    from audit_app.services import audit_partitions_ensure

    table = AuditLog._meta.db_table
    started = time.perf_counter()
    # A partition for every month of the year the rows span, as a year of the job makes.
    audit_partitions_ensure(since=timezone.now() - timedelta(days=366))
    # One transaction: a failure part-way leaves the indexes in place.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
        indexes = secondary_indexes(cursor, table)
        # Building each index once is several times faster than maintaining it per row.
        for name, _definition in indexes:
            cursor.execute(f"DROP INDEX {name}")
        # In chunks, the same rows as one statement would make, to show how far it has got.
        for first in range(1, rows + 1, FILL_CHUNK):
            last = min(first + FILL_CHUNK - 1, rows)
            cursor.execute(
                SYNTHETIC_ROWS_SQL.format(table=table),
                {
                    "first": first,
                    "last": last,
                    "rows": rows,
                    "users": users_for(rows),
                    "events": list(EVENT_TYPES),
                },
            )
            progress.advance(last, rows)
        for _name, definition in indexes:
            # A partitioned table's index reads "ON ONLY" (this table, not its partitions).
            cursor.execute(definition.replace(" ON ONLY ", " ON ", 1))
        cursor.execute(f"ANALYZE {table}")
    return time.perf_counter() - started


# Insert throughput ------------------------------------------------------------


@dataclass(frozen=True)
class InsertRun:
    evidence: bool
    writers: int
    rows: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.rows / self.seconds


def insert_run(
    *, evidence: bool, writers: int, rows_per_writer: int, timeout: float = 300
) -> InsertRun:
    """`writers` processes each insert `rows_per_writer` audit rows, one transaction each.

    A writer that fails (or dies without a word, or hangs) fails the run with a
    clear message within `timeout` seconds instead of leaving the parent waiting.
    """
    # Fresh processes (spawn): a forked child would share the parent's connections.
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(writers)
    results = context.Queue()
    processes = [
        context.Process(target=writer, args=(evidence, rows_per_writer, barrier, results))
        for _ in range(writers)
    ]
    for process in processes:
        process.start()
    spans = []
    deadline = time.monotonic() + timeout
    try:
        while len(spans) < writers:
            try:
                outcome = results.get(timeout=1)
            except queue.Empty:
                dead = [p.exitcode for p in processes if p.exitcode not in (None, 0)]
                if dead:
                    raise RuntimeError(
                        f"an audit writer process exited with code {dead[0]} before reporting"
                    ) from None
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"audit writers did not finish within {timeout:g} s"
                    ) from None
                continue
            if outcome[0] != "ok":
                raise RuntimeError(f"an audit writer process failed:\n{outcome[1]}")
            spans.append(outcome[1:])
    finally:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join()
    seconds = max(end for _, end in spans) - min(start for start, _ in spans)
    return InsertRun(
        evidence=evidence, writers=writers, rows=writers * rows_per_writer, seconds=seconds
    )


# One user's recent events ---------------------------------------------------


@dataclass(frozen=True)
class QueryRun:
    table_rows: int
    fill_seconds: float
    samples: int
    latency: Latency
    plan: list[str]


def _plan_summary(plan: str) -> list[str]:
    # The plan's nodes without costs, and the execution time.
    lines = []
    for line in plan.splitlines():
        text = line.strip().removeprefix("->").strip()
        if "Execution Time" in text:
            lines.append(text)
        elif text and not text.startswith(("Buffers", "Planning", "Index Cond", "Sort Key")):
            node = text.split("  (", 1)[0]
            if " (cost" in node:
                node = node.split(" (cost", 1)[0]
            if text.startswith(("Limit", "Index", "Bitmap", "Seq", "Sort", "Incremental")):
                lines.append(node)
    return lines


def _recent_events(user: str):
    from audit_app.selectors import audit_log_list

    since = timezone.now() - timedelta(days=30)
    # What GET /audit-logs?user_id=...&since=... runs for its first page.
    return audit_log_list(user_id=user, since=since).order_by("-occurred_at", "-id")[:51]


def query_latency(*, rows: int, samples: int) -> Latency:
    """Time the API's query for a random user's last 30 days over `rows` filled rows."""
    users = users_for(rows)
    pick = random.Random(5)
    for _ in range(20):  # warm the cache, as a running service has it
        list(_recent_events(user_id(pick.randrange(users))))
    timings = []
    for _ in range(samples):
        user = user_id(pick.randrange(users))
        t0 = time.perf_counter_ns()
        found = list(_recent_events(user))
        timings.append(time.perf_counter_ns() - t0)
        assert found, "the synthetic data gives every user recent events"
    return latency(timings)


def query_run(*, rows: int, samples: int) -> QueryRun:
    """Fill the table, then time the API's query for one user's last 30 days."""
    from audit_app.models import AuditLog

    fill_seconds = fill(rows)
    query = query_latency(rows=rows, samples=samples)
    plan = _recent_events(user_id(random.Random(5).randrange(users_for(rows)))).explain(
        analyze=True, buffers=True
    )
    return QueryRun(
        table_rows=AuditLog.objects.count(),
        fill_seconds=fill_seconds,
        samples=samples,
        latency=query,
        plan=_plan_summary(plan),
    )


# Report -----------------------------------------------------------------------


@dataclass(frozen=True)
class AuditBench:
    inserts: list[InsertRun]
    query: QueryRun


def audit_bench(
    *, rows: int, inserts_per_writer: int, samples: int = 500, rounds: int = 3
) -> AuditBench:
    """Insert runs interleaved over `rounds` (commit latency is noisy), medians; then queries."""
    configs = [(writers, evidence) for writers in (1, 2) for evidence in (False, True)]
    runs: dict[tuple[int, bool], list[InsertRun]] = {config: [] for config in configs}
    for _ in range(rounds):
        for writers, evidence in configs:
            runs[writers, evidence].append(
                insert_run(evidence=evidence, writers=writers, rows_per_writer=inserts_per_writer)
            )
    inserts = [
        sorted(runs[config], key=lambda run: run.per_second)[rounds // 2] for config in configs
    ]
    return AuditBench(inserts=inserts, query=query_run(rows=rows, samples=samples))


def _insert_rows(bench: AuditBench) -> list[tuple[str, ...]]:
    baseline = {run.writers: run.per_second for run in bench.inserts if not run.evidence}
    rows = []
    for run in bench.inserts:
        change = run.per_second / baseline[run.writers] - 1
        rows.append(
            (
                f"{run.writers}",
                "on" if run.evidence else "off",
                f"{run.per_second:.0f} /s",
                f"{change:+.0%}" if run.evidence else "",
            )
        )
    return rows


_INSERT_HEADER = ("writer processes", "tamper evidence", "inserts", "vs off")
_INSERT_NOTE = (
    "each insert its own committed transaction (synchronous_commit on); evidence off is the"
    " plain ORM insert, on is audit_record (id first, HMAC, insert); median of 3 interleaved"
    " runs"
)


def _query_lines(query: QueryRun) -> list[str]:
    lat = query.latency
    return [
        f"table: {query.table_rows:,} rows (synthetic, filled set-based in"
        f" {query.fill_seconds:.0f} s including index builds)",
        f"{query.samples} queries for random users, first API page (51 rows, newest first):"
        f" p50 {lat.p50_ms:.2f} ms, p90 {lat.p90_ms:.2f} ms, p99 {lat.p99_ms:.2f} ms",
    ]


def text(bench: AuditBench) -> str:
    return "\n".join(
        [
            f"audit inserts ({_INSERT_NOTE})",
            "",
            *text_table(_INSERT_HEADER, _insert_rows(bench)),
            "",
            "One user's events in the last 30 days:",
            *_query_lines(bench.query),
            "plan:",
            *(f"  {node}" for node in bench.query.plan),
        ]
    )


def markdown(bench: AuditBench) -> str:
    return "\n".join(
        [
            "## Audit log",
            "",
            f"Insert throughput, {_INSERT_NOTE}.",
            "",
            *markdown_table(_INSERT_HEADER, _insert_rows(bench)),
            "",
            "One user's events in the last 30 days"
            " (`GET /api/v1/audit-logs?user_id=...&since=...`):",
            "",
            *(f"- {line}" for line in _query_lines(bench.query)),
            "",
            "`EXPLAIN (ANALYZE, BUFFERS)` of one such query:",
            "",
            "```",
            *bench.query.plan,
            "```",
            "",
            "`--audit-rows N` sets the table size (default 10,000,000, the design's figure;"
            " filling it is most of `make bench`'s time), `--audit-inserts N` the inserts"
            " per writer process.",
            "",
        ]
    )
