"""Permission checks and the users-with-roles list at 100,000 users, next to Django's ModelBackend.

Django's ModelBackend reads permissions through the user's groups. Our user
model has no groups, so the comparison builds the tables ModelBackend joins
(auth_group, auth_group_permissions, auth_permission, django_content_type,
plus a stand-in `bench_user_groups` for auth_user_groups and
`bench_user_permissions` for auth_user_user_permissions) with the same
100,000 users, and runs the two queries ModelBackend.get_all_permissions runs
for a cold check. The warm check calls ModelBackend.has_perm itself on an
object whose `_perm_cache` the cold check filled, exactly as Django reuses it.
"""

import random
import time
from dataclasses import dataclass
from statistics import median

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext

from auth_app.models import User
from permissions_app import selectors
from permissions_app.effective import cache_upsert_sql
from permissions_app.models import Role, UserRole
from platform_app.api.users import listed

from .onboarding import Latency, latency
from .tables import markdown_table, text_table

USERS = 100_000
PAGE = 50
_USERS = User._meta.db_table
_USER_ROLES = UserRole._meta.db_table

# What ModelBackend._get_user_permissions and _get_group_permissions run.
_DJANGO_USER_PERMS_SQL = """
SELECT ct.app_label, p.codename FROM auth_permission p
JOIN bench_user_permissions up ON up.permission_id = p.id
JOIN django_content_type ct ON ct.id = p.content_type_id
WHERE up.user_id = %s
"""
_DJANGO_GROUP_PERMS_SQL = """
SELECT ct.app_label, p.codename FROM auth_permission p
JOIN auth_group_permissions gp ON gp.permission_id = p.id
JOIN auth_group g ON g.id = gp.group_id
JOIN bench_user_groups ug ON ug.group_id = g.id
JOIN django_content_type ct ON ct.id = p.content_type_id
WHERE ug.user_id = %s
"""


@dataclass(frozen=True)
class PageCost:
    """Where a users page's time goes, measured apart: on the server and in this process."""

    server_ms: float  # the statement's execution (EXPLAIN ANALYZE, TIMING OFF), median
    cpu_ms: float  # this process's CPU per page: the driver, folding rows, datetimes; median
    pages: int

    def rest_ms(self, p50_ms: float) -> float:
        """What of a page's p50 neither accounts for: the round trip and waiting for a core."""
        return max(p50_ms - self.server_ms - self.cpu_ms, 0.0)


@dataclass(frozen=True)
class PermissionsRun:
    users: int
    seed_seconds: float
    ours_warm: Latency
    ours_cold: Latency
    ours_has_perm_warm: Latency
    django_warm: Latency
    django_cold: Latency
    list_page: Latency
    list_page_by_role: Latency
    list_queries: int
    list_page_cost: PageCost
    list_page_by_role_cost: PageCost


def _seed(users: int) -> None:
    """Users, assignments and cache rows in a few set-based statements (no ORM loop)."""
    user_role = Role.objects.get(name="user").pk
    auditor = Role.objects.get(name="auditor").pk
    with connection.cursor() as cursor:
        # Ids shaped like UUIDs and sorted by creation, as UUIDv7 ids are.
        cursor.execute(
            f"""
            INSERT INTO {_USERS} (id, email, email_key, email_verified, name, image, password,
                                  is_active, is_staff, is_superuser, created_at, updated_at)
            SELECT '00000000-0000-7000-8000-' || lpad(to_hex(g), 12, '0'),
                   'perm-bench-' || g || '@example.com', 'perm-bench-' || g || '@example.com',
                   g %% 3 = 0, 'User ' || g, '',
                   '!unusable', true, false, false,
                   now() - make_interval(secs => %(n)s - g), now()
            FROM generate_series(1, %(n)s) AS g
            """,
            {"n": users},
        )
        # Everyone has `user`; every tenth user is also an auditor.
        cursor.execute(
            f"""
            INSERT INTO {_USER_ROLES} (id, user_id, role_id, granted_at)
            SELECT md5(u.id || r.id)::uuid::text, u.id, r.id, now()
            FROM {_USERS} u CROSS JOIN (VALUES (%(user)s), (%(auditor)s)) AS r(id)
            WHERE u.email LIKE 'perm-bench-%%'
              AND (r.id = %(user)s OR right(u.id, 1) = '0')
            """,
            {"user": user_role, "auditor": auditor},
        )
        cursor.execute(
            cache_upsert_sql("u.email LIKE 'perm-bench-%%'"),
            {"now": selectors.clock()},
        )
        # ModelBackend's side: five groups of ten permissions, each user in one or two.
        cursor.execute(
            "CREATE TABLE bench_user_groups (id bigserial PRIMARY KEY, user_id varchar(36),"
            " group_id integer REFERENCES auth_group, UNIQUE (user_id, group_id))"
        )
        cursor.execute(
            "CREATE TABLE bench_user_permissions (id bigserial PRIMARY KEY, user_id varchar(36),"
            " permission_id integer REFERENCES auth_permission, UNIQUE (user_id, permission_id))"
        )
    permissions = list(Permission.objects.order_by("id"))
    groups = []
    for i in range(5):
        group = Group.objects.create(name=f"bench-group-{i}")
        group.permissions.set(permissions[i * 10 : i * 10 + 10])
        groups.append(group.pk)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO bench_user_groups (user_id, group_id)
            SELECT u.id, (%(groups)s::int[])[1 + (abs(hashtext(u.id)) %% 5)] FROM {_USERS} u
            UNION
            SELECT u.id, (%(groups)s::int[])[1] FROM {_USERS} u WHERE right(u.id, 1) = '0'
            """,
            {"groups": groups},
        )
        # As autovacuum does after a bulk insert: statistics, and the visibility map that
        # index-only scans (the users list by role) rely on.
        cursor.execute("VACUUM ANALYZE")


def _time(calls, fn) -> Latency:
    samples = []
    for args in calls:
        t0 = time.perf_counter_ns()
        fn(*args)
        samples.append(time.perf_counter_ns() - t0)
    return latency(samples)


def _django_cold(user_id: str, perm: str) -> bool:
    # The two queries of ModelBackend.get_all_permissions, then its set lookup.
    with connection.cursor() as cursor:
        cursor.execute(_DJANGO_USER_PERMS_SQL, [user_id])
        found = {f"{app}.{codename}" for app, codename in cursor.fetchall()}
        cursor.execute(_DJANGO_GROUP_PERMS_SQL, [user_id])
        found |= {f"{app}.{codename}" for app, codename in cursor.fetchall()}
    return perm in found


class _DjangoUser:
    """What ModelBackend.has_perm looks at on a user whose permissions it already loaded."""

    is_active = True
    is_anonymous = False

    def __init__(self, perms: set[str]):
        self._perm_cache = perms


def permissions_run(*, users: int = USERS, checks: int = 20_000, pages: int = 300):
    rng = random.Random(7)
    t0 = time.perf_counter()
    _seed(users)
    seed_seconds = time.perf_counter() - t0
    ids = list(
        User.objects.filter(email__startswith="perm-bench-")
        .order_by("pk")
        .values_list("pk", flat=True)
    )

    warm_user = User.objects.select_related("permission_cache").get(pk=ids[0])
    selectors.user_has_permission(warm_user, "audit:read")
    ours_warm = _time([(warm_user, "audit:read")] * checks, selectors.user_has_permission)
    ours_has_perm_warm = _time(
        [("audit_app.view_auditlog",)] * checks, lambda perm: warm_user.has_perm(perm)
    )
    cold_users = [User.objects.get(pk=pk) for pk in rng.sample(ids, 500)]
    ours_cold = _time([(u, "audit:read") for u in cold_users], selectors.user_has_permission)

    django_perm = Permission.objects.select_related("content_type").order_by("id").first()
    perm = f"{django_perm.content_type.app_label}.{django_perm.codename}"
    django_cold = _time([(pk, perm) for pk in rng.sample(ids, 500)], _django_cold)
    backend = ModelBackend()
    stand_in = _DjangoUser({perm})
    django_warm = _time([(stand_in, perm)] * checks, backend.has_perm)

    # Cursors anywhere but the oldest thousand users, so every page (even auditors only) is full.
    cursors = [ids[i] for i in (rng.randrange(1000, len(ids)) for _ in range(pages))]

    def page(cursor_id, role=None):
        rows = users_page(cursor_id, role)
        assert len(rows) == PAGE + 1

    list_page = _time([(c,) for c in cursors], page)
    list_by_role = _time([(c, "auditor") for c in cursors], page)
    with CaptureQueriesContext(connection) as queries:
        users_page(cursors[0], None)
    list_page_cost = _page_cost(cursors, None)
    list_page_by_role_cost = _page_cost(cursors, "auditor")
    return PermissionsRun(
        users=len(ids),
        seed_seconds=seed_seconds,
        ours_warm=ours_warm,
        ours_cold=ours_cold,
        ours_has_perm_warm=ours_has_perm_warm,
        django_warm=django_warm,
        django_cold=django_cold,
        list_page=list_page,
        list_page_by_role=list_by_role,
        list_queries=len(queries),
        list_page_cost=list_page_cost,
        list_page_by_role_cost=list_page_by_role_cost,
    )


def _page_cost(cursors: list[str], role: str | None, explained: int = 100) -> PageCost:
    """A page's CPU in this process, and its statement's execution time on the server.

    The server's time comes from EXPLAIN ANALYZE (TIMING OFF: no clock read per
    row) of the statement exactly as the page sent it, the prepared EXECUTE
    with its values, on the same connection.
    """
    cpu = []
    for cursor_id in cursors:
        started = time.process_time()
        users_page(cursor_id, role)
        cpu.append(time.process_time() - started)
    server = []
    for cursor_id in cursors[:explained]:
        with CaptureQueriesContext(connection) as queries:
            users_page(cursor_id, role)
        (sent,) = [query["sql"] for query in queries.captured_queries]
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) {sent}")
            server.append(cursor.fetchone()[0][0]["Execution Time"])
    return PageCost(server_ms=median(server), cpu_ms=median(cpu) * 1000, pages=len(cursors))


def users_page(cursor_id: str, role: str | None) -> list[dict]:
    """One page as the users API reads it: newest first, before a cursor, roles included.

    The API's own read (platform_app.api.users.listed), with the one row past
    the page that CursorPagination asks for to know whether a next page exists.
    """
    return listed(role=role, descending=True, bound=("<", cursor_id), limit=PAGE + 1)


def rows(run: PermissionsRun) -> list[tuple[str, str, str]]:
    def us(lat: Latency) -> tuple[str, str]:
        return f"{lat.p50_ms * 1000:.1f} µs", f"{lat.p99_ms * 1000:.1f} µs"

    def ms(lat: Latency) -> tuple[str, str]:
        return f"{lat.p50_ms:.2f} ms", f"{lat.p99_ms:.2f} ms"

    return [
        ("warm check, user_has_permission (ours)", *us(run.ours_warm)),
        ("warm check, user.has_perm via RoleBackend (ours)", *us(run.ours_has_perm_warm)),
        ("warm check, ModelBackend.has_perm (Django)", *us(run.django_warm)),
        ("cold check, 1 query (ours)", *ms(run.ours_cold)),
        ("cold check, 2 queries through groups (Django)", *ms(run.django_cold)),
        (f"users with roles, page of {PAGE}", *ms(run.list_page)),
        (f"users with roles, page of {PAGE}, role=auditor", *ms(run.list_page_by_role)),
    ]


def _notes(run: PermissionsRun) -> list[str]:
    return [
        f"{run.users} users seeded with set-based INSERT ... SELECT generate_series in"
        f" {run.seed_seconds:.1f} s (every user holds `user`, every tenth also `auditor`;"
        " on Django's side each user is in one or two of five groups of ten permissions).",
        f"A users page is {run.list_queries} SQL query (users joined to their current roles,"
        " a row per role held, a prepared statement; rows then folded into users and their"
        " datetimes written as the API writes them), keyset-paginated at random positions:"
        " what `GET /api/v1/users` reads.",
        f"Where a page's time goes (median of {run.list_page_cost.pages} pages): "
        + page_cost_text(run.list_page_cost, run.list_page.p50_ms)
        + "; by role: "
        + page_cost_text(run.list_page_by_role_cost, run.list_page_by_role.p50_ms)
        + ".",
        "A cold check of ours is the first check on a user loaded without its cache row; the"
        " API's authentication joins the row, so there a check is always warm.",
        "Django's cold check runs the two queries ModelBackend.get_all_permissions runs"
        " (user permissions, then group permissions joined through auth_group), against"
        " stand-in bench_user_groups/bench_user_permissions tables, since our user model has"
        " no groups; its warm check is ModelBackend.has_perm on a filled _perm_cache.",
    ]


def page_cost_text(cost: PageCost, p50_ms: float) -> str:
    return (
        f"of the p50 {p50_ms:.2f} ms, the statement executes in {cost.server_ms:.2f} ms on the"
        f" server (EXPLAIN ANALYZE, TIMING OFF), this process spends {cost.cpu_ms:.2f} ms of"
        " CPU (the driver, folding the rows into users, writing their datetimes), and the"
        f" other {cost.rest_ms(p50_ms):.2f} ms are the round trip and waiting for a core"
    )


def text(run: PermissionsRun) -> str:
    table = text_table(("permissions", "p50", "p99"), rows(run))
    return "\n".join([*table, "", *_notes(run)])


def markdown(run: PermissionsRun) -> str:
    return "\n".join(
        [
            "## Permissions",
            "",
            *markdown_table(("measured", "p50", "p99"), rows(run)),
            "",
            *(f"- {note}" for note in _notes(run)),
            "",
        ]
    )
