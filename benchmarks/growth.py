"""How cost grows with data: user_onboard, sign-in and the session check at 10^3, 10^5 and
10^6 users; the audit query at 10^6 and 10^7 rows; the users list at deep cursor positions.

Runs last in `python -m benchmarks`: it times the audit query on the audit section's rows
first, then empties the audit log and the users (and all that hangs off them) and fills
them again in steps. `python -m benchmarks --section growth` runs it alone on a fresh bench
database.
Around user_onboard's timed calls at each size it also reads what PostgreSQL did for them
(buffers, WAL, index depth and size, autovacuum), and the report says from those figures why
the flow grows (issue 20).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .tables import markdown_table, text_table

if TYPE_CHECKING:  # onboarding imports models: only once Django is set up
    from .onboarding import Latency

USER_STEPS = (1_000, 100_000, 1_000_000)
SMALL_AUDIT = 1_000_000
# Rows between the newest user and the cursor of the page read.
DEPTHS = (0, 10_000, 100_000, 500_000, 990_000)
PASSWORD = "growth-bench-password"  # noqa: S105 (a benchmark user's, not a secret)
IP, AGENT = "192.0.2.10", "growth-bench/1.0"
CHART = "benchmarks-growth.png"

_FILL_USERS_SQL = """
INSERT INTO {users} (id, email, email_key, email_verified, name, image, password,
                     is_active, is_staff, is_superuser, created_at, updated_at)
SELECT '00000000-0000-7000-a000-' || lpad(g::text, 12, '0'),
       'growth-' || g || '@example.com', 'growth-' || g || '@example.com', true,
       'User ' || g, '', '!unusable', true, false, false,
       now() - make_interval(secs => %(stop)s - g), now()
FROM generate_series(%(start)s, %(stop)s) AS g;
INSERT INTO {sessions} (id, user_id, token_hash, expires_at, created_at, updated_at,
                        last_seen_at, ip_address, user_agent, data, amr, authenticated_at)
SELECT left(h, 32)::uuid::text, '00000000-0000-7000-a000-' || lpad(g::text, 12, '0'), h,
       now() + interval '30 days', now(), now(), now(), NULL, '', '{{}}', '{{pwd}}', now()
FROM generate_series(%(start)s, %(stop)s) AS g,
     LATERAL encode(sha256(('growth-token-' || g)::bytea), 'hex') AS h
-- In the order of the two random keys (id and token hash): each index grows at its end.
ORDER BY h;
ANALYZE {users};
ANALYZE {sessions};
"""


def _user_id(n: int) -> str:
    return f"00000000-0000-7000-a000-{n:012d}"


# Calls between two looks at what autovacuum is working on, during the timed onboard calls.
PROBE_EVERY = 20


@dataclass(frozen=True)
class Storage:
    """What PostgreSQL did for user_onboard at one size, measured around its timed calls.

    Per call: `hits` buffers found in shared_buffers, `reads` blocks read into them
    (from the OS cache or the disk), `writes` dirty buffers written out to make
    room, WAL bytes and full-page images. From PostgreSQL 18 these are the
    connection's own (pg_stat_get_backend_io, pg_stat_get_backend_wal); before, the
    database's (pg_stat_database: hits and reads only, autovacuum's included).
    """

    hits: float
    reads: float
    writes: float | None
    wal_kb: float | None
    fpi: float | None
    connection_only: bool
    autovacuum: tuple[str, ...]  # tables autovacuum worked on while the calls ran
    # Buffers visited (found or read) per call, by table or index: the database's counters.
    visits: dict[str, float]
    indexes: tuple[tuple[str, int | None, int], ...]  # users' indexes: name, B-tree levels, bytes
    relations_bytes: int  # users and sessions, heaps and indexes
    shared_buffers_bytes: int


@dataclass(frozen=True)
class UserStep:
    users: int
    onboard: Latency
    storage: Storage
    sign_in: Latency
    sign_in_without_hash: Latency
    session_check: Latency


@dataclass(frozen=True)
class GrowthRun:
    steps: list[UserStep]
    audit: list[tuple[int, Latency]]  # (rows in the table, the query's latency)
    pages: list[tuple[int, Latency]]  # (rows before the cursor, one page's latency)
    fill_seconds: float


def _timed(calls: int, fn, probe=None) -> Latency:
    """`calls` calls of fn(i), each timed; `probe()` every PROBE_EVERY calls, untimed."""
    from .onboarding import latency

    samples = []
    for i in range(calls):
        if probe is not None and i % PROBE_EVERY == 0:
            probe()
        t0 = time.perf_counter_ns()
        fn(i)
        samples.append(time.perf_counter_ns() - t0)
    return latency(samples)


def _query(sql: str, params=()) -> list[tuple]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


# This connection's buffer and WAL counters (PostgreSQL 18), else the database's.
_IO_SQL = """
SELECT sum(hits), sum(read_bytes) / current_setting('block_size')::int,
       sum(write_bytes) / current_setting('block_size')::int,
       (SELECT wal_bytes FROM pg_stat_get_backend_wal(pg_backend_pid())),
       (SELECT wal_fpi FROM pg_stat_get_backend_wal(pg_backend_pid()))
FROM pg_stat_get_backend_io(pg_backend_pid()) WHERE object = 'relation'
"""
_DATABASE_IO_SQL = """
SELECT blks_hit, blks_read, NULL, NULL, NULL FROM pg_stat_database
WHERE datname = current_database()
"""
_VISITS_SQL = """
SELECT relname, coalesce(heap_blks_hit, 0) + coalesce(heap_blks_read, 0)
FROM pg_statio_all_tables
UNION ALL
SELECT indexrelname, idx_blks_hit + idx_blks_read FROM pg_statio_all_indexes
"""
_VACUUMING_SQL = """
SELECT relid::regclass::text FROM pg_stat_progress_vacuum WHERE datname = current_database()
UNION SELECT relid::regclass::text FROM pg_stat_progress_analyze
WHERE datname = current_database()
"""


def _io_counters(connection_only: bool) -> tuple[tuple, dict[str, int]]:
    """The buffer and WAL counters, and the buffers visited so far by table and index."""
    # Counters reach the shared statistics when a transaction ends, at most once a
    # second unless forced: force it, and read them in the next transaction.
    _query("SELECT pg_stat_force_next_flush()")
    totals = _query(_IO_SQL if connection_only else _DATABASE_IO_SQL)[0]
    visits: dict[str, int] = {}
    for name, count in _query(_VISITS_SQL):
        visits[name] = visits.get(name, 0) + count
    return totals, visits


def _btree_levels() -> bool:
    """Whether pageinspect's bt_metap can say how deep the indexes are (superuser, contrib)."""
    from django.db import DatabaseError, transaction

    try:
        with transaction.atomic():
            _query("CREATE EXTENSION IF NOT EXISTS pageinspect")
            # Installed is not enough: reading an index's pages takes a superuser.
            _query("SELECT level FROM bt_metap(%s)", [_users_pkey()])
    except DatabaseError:
        return False
    return True


def _users_pkey() -> str:
    from auth_app.models import User

    return _query(
        "SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = %s::regclass"
        " AND indisprimary",
        [User._meta.db_table],
    )[0][0]


def _storage(before: tuple, after: tuple, calls: int, vacuuming: set[str]) -> Storage:
    from auth_app.models import Session, User

    (io_before, visits_before), (io_after, visits_after) = before, after

    def per_call(i: int) -> float | None:
        if io_after[i] is None or io_before[i] is None:
            return None
        return float(io_after[i] - io_before[i]) / calls

    levels = _btree_levels()
    indexes = tuple(
        (
            name,
            _query("SELECT level + 1 FROM bt_metap(%s)", [name])[0][0] if levels else None,
            size,
        )
        for name, size in _query(
            "SELECT i.indexrelid::regclass::text, pg_relation_size(i.indexrelid) FROM pg_index i"
            " JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam"
            " WHERE i.indrelid = %s::regclass AND a.amname = 'btree' ORDER BY 2 DESC",
            [User._meta.db_table],
        )
    )
    ((relations, shared_buffers),) = _query(
        "SELECT pg_total_relation_size(%s::regclass) + pg_total_relation_size(%s::regclass),"
        " pg_size_bytes(current_setting('shared_buffers'))",
        [User._meta.db_table, Session._meta.db_table],
    )
    wal = per_call(3)
    return Storage(
        hits=per_call(0),
        reads=per_call(1),
        writes=per_call(2),
        wal_kb=None if wal is None else wal / 1024,
        fpi=per_call(4),
        connection_only=io_after[2] is not None,
        autovacuum=tuple(sorted(vacuuming)),
        visits={
            name: (count - visits_before.get(name, 0)) / calls
            for name, count in visits_after.items()
            if count != visits_before.get(name, 0)
        },
        indexes=indexes,
        relations_bytes=relations,
        shared_buffers_bytes=shared_buffers,
    )


def _fill_users(start: int, stop: int) -> float:
    """Users start..stop (numbered), with one live session each, set-based; seconds taken."""
    from django.db import connection

    from auth_app.models import Session, User

    t0 = time.perf_counter()
    sql = _FILL_USERS_SQL.format(users=User._meta.db_table, sessions=Session._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(sql, {"start": start, "stop": stop})
    return time.perf_counter() - t0


def _empty_tables() -> None:
    """No users and no audit rows: what hangs off the users goes with them."""
    from django.db import connection, transaction

    from audit_app.models import AuditLog
    from auth_app.models import User

    with transaction.atomic(), connection.cursor() as cursor:
        # The append-only trigger lets the owner empty the log with this set (docs/audit.md).
        cursor.execute("SET LOCAL sv.audit_retention = 'on'")
        cursor.execute(f"TRUNCATE {AuditLog._meta.db_table}")
        cursor.execute(f"TRUNCATE {User._meta.db_table} CASCADE")


def _user_step(users: int, samples: int, rng: random.Random) -> UserStep:
    from django.contrib.auth.hashers import make_password
    from django.test import Client
    from django.test.utils import override_settings

    from auth_app.signin import sign_in
    from platform_app.flows import user_onboard

    connection_only = int(_query("SHOW server_version_num")[0][0]) >= 180_000
    vacuuming: set[str] = set()
    io_before = _io_counters(connection_only)
    onboard = _timed(
        samples,
        lambda i: user_onboard(email=f"growth-{users}-new-{i}@example.com", password=None),
        probe=lambda: vacuuming.update(name for (name,) in _query(_VACUUMING_SQL)),
    )
    storage = _storage(io_before, _io_counters(connection_only), samples, vacuuming)
    # Sign-in with the configured hasher: the password hash is most of it.
    signer = user_onboard(email=f"growth-{users}-signer@example.com", password=PASSWORD)
    full = _timed(
        max(samples // 10, 10),
        lambda i: sign_in(email=signer.email, password=PASSWORD, ip_address=IP, user_agent=AGENT),
    )
    # The same path with a hash that costs next to nothing: the lookups and writes alone.
    cheap = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    with override_settings(PASSWORD_HASHERS=cheap):
        quick = user_onboard(email=f"growth-{users}-quick@example.com", password=None)
        quick.password = make_password(PASSWORD)
        quick.save(update_fields=["password"])
        without_hash = _timed(
            samples,
            lambda i: sign_in(
                email=quick.email, password=PASSWORD, ip_address=IP, user_agent=AGENT
            ),
        )
    client = Client(HTTP_HOST="localhost")
    tokens = [f"growth-token-{rng.randint(1, users)}" for _ in range(samples)]

    def check(i: int) -> None:
        response = client.get("/api/v1/auth/session", HTTP_AUTHORIZATION=f"Bearer {tokens[i]}")
        assert response.status_code == 200, response.content

    check(0)  # warm
    return UserStep(
        users=users,
        onboard=onboard,
        storage=storage,
        sign_in=full,
        sign_in_without_hash=without_hash,
        session_check=_timed(samples, check),
    )


def _pages(newest: int, samples: int) -> list[tuple[int, Latency]]:
    from .permissions import PAGE, users_page

    def page_at(depth: int):
        cursor = _user_id(newest + 1 - depth)

        def read(_i: int) -> None:
            assert len(users_page(cursor, None)) == PAGE + 1

        return read

    return [(depth, _timed(samples, page_at(depth))) for depth in DEPTHS]


def growth_run(*, rows: int, samples: int = 200) -> GrowthRun:
    """Time the audit query on the `rows` synthetic rows the audit section filled (other
    sections add rows of their own, whose users have no recent events), then empty and
    refill users step by step."""
    from .audit import fill, query_latency

    audit = []
    if rows > SMALL_AUDIT:
        audit.append((rows, query_latency(rows=rows, samples=samples)))
    _empty_tables()
    fill(SMALL_AUDIT)
    audit.insert(0, (SMALL_AUDIT, query_latency(rows=SMALL_AUDIT, samples=samples)))

    rng = random.Random(11)
    steps, filled, fill_seconds = [], 0, 0.0
    for users in USER_STEPS:
        fill_seconds += _fill_users(filled + 1, users)
        filled = users
        steps.append(_user_step(users, samples, rng))
    return GrowthRun(
        steps=steps, audit=audit, pages=_pages(filled, samples), fill_seconds=fill_seconds
    )


# Report -------------------------------------------------------------------------------------

_HEADER = ("operation", "size", "p50 ms", "p90 ms", "p99 ms")


def _rows(run: GrowthRun) -> list[tuple[str, ...]]:
    def row(label: str, size: str, lat: Latency) -> tuple[str, ...]:
        return (label, size, f"{lat.p50_ms:.2f}", f"{lat.p90_ms:.2f}", f"{lat.p99_ms:.2f}")

    out = []
    for name, pick in _USER_SERIES:
        out += [row(name, f"{s.users:,} users", pick(s)) for s in run.steps]
    out += [row("audit query, a user's last 30 days", f"{n:,} rows", lat) for n, lat in run.audit]
    out += [row("users list, page of 50", f"{d:,} rows deep", lat) for d, lat in run.pages]
    return out


_USER_SERIES = (
    ("user_onboard (no password)", lambda s: s.onboard),
    ("sign-in, full (with the password hash)", lambda s: s.sign_in),
    ("sign-in without the hash (MD5 hasher)", lambda s: s.sign_in_without_hash),
    ("session check, GET /api/v1/auth/session", lambda s: s.session_check),
)


def _note(run: GrowthRun) -> str:
    return (
        f"Users (each with one live session) filled set-based in {run.fill_seconds:.0f} s;"
        " each operation timed in-process, one call at a time, after the fill and ANALYZE."
        " The full sign-in uses the configured password hasher; the other sign-in row is"
        " the same flow for a user whose password is stored with Django's MD5 hasher, so it"
        " shows what the lookups and writes cost. The audit row at the largest size reuses"
        " the audit section's rows; the log is then emptied and refilled with"
        f" {SMALL_AUDIT:,} rows. The users list reads the page a cursor that deep points to,"
        f" at {run.steps[-1].users:,} users."
    )


def _series(values: list[float | None], fmt: str) -> str:
    return " -> ".join("n/a" if v is None else format(v, fmt) for v in values)


def _mb(size: int) -> str:
    return f"{size / 2**20:,.0f} MB"


def why_onboard_grows(run: GrowthRun) -> list[str]:
    """Why user_onboard's latency changes with the users, from what was measured at each size."""
    steps = run.steps
    sizes = " -> ".join(f"{s.users:,}" for s in steps)
    stores = [s.storage for s in steps]
    last = stores[-1]
    whose = "this connection's" if last.connection_only else "the whole database's"
    lines = [
        f"Why user_onboard changes with the users ({sizes} users; p50"
        f" {_series([s.onboard.p50_ms for s in steps], '.2f')} ms), per call ({whose} counters):",
        f"- buffers found in shared_buffers: {_series([st.hits for st in stores], '.0f')};"
        f" blocks read from outside them (OS cache or disk):"
        f" {_series([st.reads for st in stores], '.1f')}"
        + (
            f"; dirty buffers written out to make room:"
            f" {_series([st.writes for st in stores], '.1f')}"
            if last.writes is not None
            else ""
        ),
    ]
    if last.wal_kb is not None:
        lines.append(
            f"- WAL written: {_series([st.wal_kb for st in stores], '.1f')} kB, of which"
            f" full-page images (a page's first change after a checkpoint):"
            f" {_series([st.fpi for st in stores], '.1f')}"
        )
    depth = [
        ", ".join(f"{levels}" if levels else "?" for _name, levels, _size in st.indexes)
        for st in stores
    ]
    lines.append(
        f"- the users table's {len(last.indexes)} B-tree indexes ("
        + ", ".join(name.rpartition(".")[2] for name, _levels, _size in last.indexes)
        + "), levels deep: "
        + " -> ".join(f"[{d}]" for d in depth)
        + "; each insert into one, and each foreign-key check of a new row against the"
        " primary key, reads one page per level"
    )
    lines.append(
        "- users and sessions with their indexes: "
        + " -> ".join(_mb(st.relations_bytes) for st in stores)
        + f" (of which users' indexes {_mb(sum(size for *_, size in last.indexes))}),"
        f" against shared_buffers of {_mb(last.shared_buffers_bytes)}"
    )
    vacuumed = [
        f"{s.users:,} users: {', '.join(s.storage.autovacuum)}"
        for s in steps
        if s.storage.autovacuum
    ]
    lines.append(
        "- autovacuum or autoanalyze at work during the timed calls (looked every"
        f" {PROBE_EVERY} calls): " + ("; ".join(vacuumed) if vacuumed else "never")
    )
    first, final = stores[0], last
    causes = []
    if final.hits - first.hits >= 1:
        grown = sorted(
            (
                (final.visits.get(name, 0.0) - first.visits.get(name, 0.0), name)
                for name in final.visits.keys() | first.visits.keys()
            ),
            reverse=True,
        )
        causes.append(
            f"{final.hits - first.hits:.0f} more buffer visits per call, most of them in "
            + ", ".join(f"{name} {delta:+.1f}" for delta, name in grown[:4] if delta >= 0.5)
        )
    if final.reads - first.reads >= 0.5:
        causes.append(
            f"{final.reads - first.reads:.1f} more blocks per call read from outside"
            " shared_buffers (the tables outgrow it)"
        )
    if final.writes is not None and final.writes - first.writes >= 0.5:
        causes.append(
            f"{final.writes - first.writes:.1f} more dirty buffers per call written out by the"
            " call itself (the fill's pages still being evicted)"
        )
    if vacuumed:
        causes.append("autovacuum working on the freshly filled tables at the same time")
    lines.append(
        "- so, from the smallest size to the largest: "
        + ("; ".join(causes) if causes else "no more work per call was measured")
    )
    return lines


def text(run: GrowthRun) -> str:
    return "\n".join(
        [
            "How cost grows with data:",
            *text_table(_HEADER, _rows(run)),
            _note(run),
            *why_onboard_grows(run),
        ]
    )


def markdown(run: GrowthRun, chart: str | None) -> str:
    return "\n".join(
        [
            "## How cost grows with data",
            "",
            *([f"![p50 by data size]({chart})", ""] if chart else []),
            *markdown_table(_HEADER, _rows(run)),
            "",
            _note(run),
            "",
            *why_onboard_grows(run),
            "",
        ]
    )


def chart(run: GrowthRun, docs: Path) -> str | None:
    """Write the chart (p50 against data size, log-log) into `docs`; its file name, or None."""
    try:
        import matplotlib
    except ImportError:  # a dev dependency; the table says it all too
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # One y scale for the three panels: a flat line looks flat, noise looks small.
    fig, (users_ax, audit_ax, pages_ax) = plt.subplots(
        1, 3, figsize=(13, 4.6), dpi=110, sharey=True
    )
    for name, pick in _USER_SERIES:
        users_ax.plot(
            [s.users for s in run.steps], [pick(s).p50_ms for s in run.steps], "o-", label=name
        )
    users_ax.set_xlabel("users")
    users_ax.set_title("per call, by users")
    audit_ax.plot([n for n, _ in run.audit], [lat.p50_ms for _, lat in run.audit], "o-")
    audit_ax.set_xlabel("audit rows")
    audit_ax.set_xlim(SMALL_AUDIT / 2, max(n for n, _ in run.audit) * 2)
    audit_ax.set_title("audit query, a user's last 30 days")
    pages_ax.plot([max(d, 1) for d, _ in run.pages], [lat.p50_ms for _, lat in run.pages], "o-")
    pages_ax.set_xlabel("rows before the cursor (0 shown at 1)")
    pages_ax.set_title(f"users list page at {run.steps[-1].users:,} users")
    for ax in (users_ax, audit_ax, pages_ax):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.grid(which="both", alpha=0.25)
    users_ax.set_ylabel("p50, milliseconds (log scale)")
    fig.legend(loc="lower center", ncol=4, fontsize=8)
    fig.suptitle("How cost grows with data (flat is good)")
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(docs / CHART)
    plt.close(fig)
    return CHART
