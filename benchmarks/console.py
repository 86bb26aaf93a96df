"""The operators' console at scale: the dashboard and the audit list's first, middle and last
page, rendered through Django's full request path with a superuser signed in.

Runs after the audit section (its ten million rows) and the permissions section (its 100,000
users) in `python -m benchmarks`; `python -m benchmarks --section console` runs it alone on a
fresh bench database, filling both itself.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .tables import markdown_table, text_table

if TYPE_CHECKING:  # onboarding imports models: only once Django is set up
    from .onboarding import Latency

DASHBOARD_MS = 300.0
LIST_PAGE_MS = 200.0
AUDIT = "/admin/audit_app/auditlog/"
USERS = 100_000


@dataclass(frozen=True)
class Page:
    label: str
    url: str
    target_ms: float
    latency: Latency
    queries: int

    @property
    def met(self) -> bool:
        return self.latency.p50_ms <= self.target_ms


@dataclass(frozen=True)
class ConsoleRun:
    audit_rows: int
    users: int
    samples: int
    pages: list[Page]


def seed_users(users: int) -> None:
    """Users signing up over the last 60 days, set-based (the dashboard's sign-ups figure)."""
    from django.db import connection

    from auth_app.models import User

    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {User._meta.db_table} (id, email, email_key, email_verified, name, image,
                password, is_active, is_staff, is_superuser, created_at, updated_at)
            SELECT '00000000-0000-7000-9000-' || lpad(g::text, 12, '0'),
                   'console-bench-' || g || '@example.com',
                   'console-bench-' || g || '@example.com', true, 'User ' || g, '',
                   '!unusable', true, false, false,
                   now() - interval '60 days' * (1 - g::float / %(n)s), now()
            FROM generate_series(1, %(n)s) AS g
            """,
            {"n": users},
        )
        cursor.execute(f"ANALYZE {User._meta.db_table}")


def console_run(*, samples: int = 30, warmup: int = 5) -> ConsoleRun:
    """Time each page `samples` times, after `warmup` untimed loads, as a superuser."""
    from django.db import connection
    from django.db.models import Max, Min
    from django.test import Client

    from audit_app.models import AuditLog
    from auth_app.models import User
    from platform_app.flows import user_onboard

    from .onboarding import latency

    root = User.objects.filter(email="console-root@example.com").first() or user_onboard(
        email="console-root@example.com", is_staff=True, is_superuser=True
    )
    client = Client(HTTP_HOST="localhost")
    client.force_login(root)
    bounds = AuditLog.objects.aggregate(low=Min("id"), high=Max("id"))
    middle = (bounds["low"] + bounds["high"]) // 2
    wanted = [
        ("dashboard (/admin/)", "/admin/", DASHBOARD_MS),
        ("audit list, first page", AUDIT, LIST_PAGE_MS),
        ("audit list, a middle page", f"{AUDIT}?before={middle}", LIST_PAGE_MS),
        ("audit list, last page", f"{AUDIT}?last=1", LIST_PAGE_MS),
        (
            "audit list, failed sign-ins in 48 h",
            f"{AUDIT}?event_type=auth.sign_in_failed&within=2d",
            LIST_PAGE_MS,
        ),
    ]
    pages = []
    for label, url, target in wanted:
        for _ in range(warmup):
            response = client.get(url)
            if response.status_code != 200:
                raise RuntimeError(f"{url} answered {response.status_code}")
        statements = []

        def count(execute, sql, params, many, context, seen=statements):
            seen.append(sql)
            return execute(sql, params, many, context)

        with connection.execute_wrapper(count):
            client.get(url)
        timings = []
        for _ in range(samples):
            started = time.perf_counter_ns()
            client.get(url)
            timings.append(time.perf_counter_ns() - started)
        pages.append(Page(label, url, target, latency(timings), len(statements)))
    return ConsoleRun(
        audit_rows=bounds["high"] - bounds["low"] + 1,
        users=User.objects.count(),
        samples=samples,
        pages=pages,
    )


_HEADER = ("page", "p50", "p90", "target (p50)", "queries", "verdict")


def _rows(run: ConsoleRun) -> list[tuple[str, ...]]:
    return [
        (
            page.label,
            f"{page.latency.p50_ms:.1f} ms",
            f"{page.latency.p90_ms:.1f} ms",
            f"<= {page.target_ms:g} ms",
            str(page.queries),
            "met" if page.met else "MISSED",
        )
        for page in run.pages
    ]


def _note(run: ConsoleRun) -> str:
    return (
        f"{run.users:,} users, about {run.audit_rows:,} audit rows; each page rendered"
        f" {run.samples} times through Django's test client (middleware, session, admin"
        " templates; no network), with a superuser signed in, after warm-up loads."
    )


def text(run: ConsoleRun) -> str:
    return "\n".join(["The operators' console:", *text_table(_HEADER, _rows(run)), _note(run)])


def markdown(run: ConsoleRun) -> str:
    return "\n".join(
        [
            "## The operators' console",
            "",
            *markdown_table(_HEADER, _rows(run)),
            "",
            _note(run),
            " The audit list pages by key (`?before=`, `?last=1`) and counts nothing; the"
            " dashboard's trends are GROUP BY queries over bounded, indexed time ranges.",
            "",
        ]
    )
