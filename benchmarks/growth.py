"""How cost grows with data: user_onboard, sign-in and the session check at 10^3, 10^5 and
10^6 users; the audit query at 10^6 and 10^7 rows; the users list at deep cursor positions.

Runs last in `python -m benchmarks`: it times the audit query on the audit section's rows
first, then empties the audit log and the users (and all that hangs off them) and fills
them again in steps. `python -m benchmarks.growth` runs it alone on a fresh bench database.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
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


@dataclass(frozen=True)
class UserStep:
    users: int
    onboard: Latency
    sign_in: Latency
    sign_in_without_hash: Latency
    session_check: Latency


@dataclass(frozen=True)
class GrowthRun:
    steps: list[UserStep]
    audit: list[tuple[int, Latency]]  # (rows in the table, the query's latency)
    pages: list[tuple[int, Latency]]  # (rows before the cursor, one page's latency)
    fill_seconds: float


def _timed(calls: int, fn) -> Latency:
    from .onboarding import latency

    samples = []
    for i in range(calls):
        t0 = time.perf_counter_ns()
        fn(i)
        samples.append(time.perf_counter_ns() - t0)
    return latency(samples)


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

    onboard = _timed(
        samples, lambda i: user_onboard(email=f"growth-{users}-new-{i}@example.com", password=None)
    )
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


def text(run: GrowthRun) -> str:
    return "\n".join(["How cost grows with data:", *text_table(_HEADER, _rows(run)), _note(run)])


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.growth", description=__doc__)
    parser.add_argument(
        "--audit-rows",
        type=int,
        default=10_000_000,
        help="audit rows to fill first, the largest audit point (default 10,000,000)",
    )
    parser.add_argument("--samples", type=int, default=200, help="calls per point (default 200)")
    args = parser.parse_args(argv)
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings"
    import django

    django.setup()
    from django.conf import settings

    from .audit import fill
    from .database import bench_database

    with bench_database():
        fill(args.audit_rows)
        run = growth_run(rows=args.audit_rows, samples=args.samples)
    print(text(run))
    print(f"chart: {chart(run, settings.BASE_DIR / 'docs')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
