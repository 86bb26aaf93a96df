"""Reads from the permissions schema: effective permissions, checks and lists."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.contrib.postgres.aggregates import JSONBAgg
from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import JSONObject
from django.utils import timezone

from auth_app.models import User
from sv_sdk.db.prepared import execute_prepared

from .catalogue import WILDCARD
from .models import PermissionCache, Role, UserRole


def _now() -> datetime:
    # The one clock of the permissions domain (selectors and services): tests
    # move it forward to make assignments expire.
    return timezone.now()


def active_sql(alias: str, now: str) -> str:
    """The condition of a current (unexpired) assignment `alias`, at the SQL value `now`.

    The one definition of "active" in SQL; assignment_active() is the same for the ORM.
    """
    return f"({alias}.expires_at IS NULL OR {alias}.expires_at > {now})"


def assignment_active(now: datetime) -> Q:
    """active_sql()'s condition as an ORM filter on UserRole."""
    return Q(expires_at__isnull=True) | Q(expires_at__gt=now)


# The truth, computed from users, user_roles and roles, for the users that
# `{where}` selects. Only constant fragments and table names are interpolated;
# values always go in as parameters.
_EFFECTIVE_SQL = f"""
SELECT u.id AS user_id,
       CASE WHEN u.is_superuser THEN ARRAY['*']::varchar[]
            ELSE coalesce(granted.permissions, '{{}}') END AS permissions,
       coalesce(granted.roles, '{{}}') AS roles,
       granted.valid_until
FROM {User._meta.db_table} u
LEFT JOIN LATERAL (
    SELECT array_agg(DISTINCT p.permission ORDER BY p.permission)
               FILTER (WHERE p.permission IS NOT NULL) AS permissions,
           array_agg(DISTINCT r.name ORDER BY r.name) AS roles,
           min(ur.expires_at) AS valid_until
    FROM {UserRole._meta.db_table} ur
    JOIN {Role._meta.db_table} r ON r.id = ur.role_id
    LEFT JOIN LATERAL unnest(r.permissions) AS p(permission) ON true
    WHERE ur.user_id = u.id AND {active_sql("ur", "%(now)s")}
) granted ON true
WHERE {{where}}
"""  # noqa: S608


def effective_sql(where: str) -> str:
    """The effective-permissions query for the users matching the constant SQL `where`."""
    return _EFFECTIVE_SQL.replace("{where}", where)


# The cache rows that disagree with the truth (or are missing), for the users
# that `{where}` selects: the one comparison of cache and truth, read by the
# invariant checks and rewritten by services.permission_cache_repair.
_CACHE_DISAGREEMENTS_SQL = f"""
SELECT truth.user_id, cache.user_id IS NULL AS missing,
       cache.permissions AS old_permissions, truth.permissions,
       cache.roles AS old_roles, truth.roles,
       cache.valid_until AS old_valid_until, truth.valid_until
FROM ({{truth}}) truth
LEFT JOIN {PermissionCache._meta.db_table} cache ON cache.user_id = truth.user_id
WHERE cache.user_id IS NULL
   OR cache.permissions IS DISTINCT FROM truth.permissions
   OR cache.roles IS DISTINCT FROM truth.roles
   OR cache.valid_until IS DISTINCT FROM truth.valid_until
"""  # noqa: S608


def cache_disagreements_sql(where: str) -> str:
    """The query of the cache rows that disagree with the truth for the users matching
    the constant SQL `where`; its columns are CacheDisagreement's fields, in order."""
    return _CACHE_DISAGREEMENTS_SQL.replace("{truth}", effective_sql(where))


@dataclass(frozen=True)
class CacheDisagreement:
    user_id: str
    missing: bool
    old_permissions: list[str] | None
    permissions: list[str]
    old_roles: list[str] | None
    roles: list[str]
    old_valid_until: datetime | None
    valid_until: datetime | None


def permission_cache_disagreements(*, user_ids: Iterable[str]) -> list[CacheDisagreement]:
    """These users' cache rows that are missing or differ from the truth (read-only)."""
    with connection.cursor() as cursor:
        cursor.execute(
            cache_disagreements_sql("u.id = ANY(%(ids)s)") + " ORDER BY user_id",
            {"now": _now(), "ids": list(user_ids)},
        )
        return [CacheDisagreement(*row) for row in cursor.fetchall()]


@dataclass(frozen=True)
class Effective:
    permissions: frozenset[str]
    roles: tuple[str, ...]
    valid_until: datetime | None


def permissions_compute(*, user_ids: Iterable[str]) -> dict[str, Effective]:
    """Effective permissions from the tables themselves (read-only, one query)."""
    with connection.cursor() as cursor:
        cursor.execute(
            effective_sql("u.id = ANY(%(ids)s)"),
            {"now": _now(), "ids": list(user_ids)},
        )
        return {
            user_id: Effective(frozenset(permissions), tuple(roles), valid_until)
            for user_id, permissions, roles, valid_until in cursor.fetchall()
        }


def permission_matches(granted: str, wanted: str) -> bool:
    """Whether a granted permission string covers the wanted `resource:action`."""
    if granted in (WILDCARD, wanted):
        return True
    resource, _, action = granted.partition(":")
    return action == "*" and wanted.partition(":")[0] == resource


def effective_for_user(user) -> Effective:
    """A user's effective permissions and roles, loaded at most once per user object.

    Free when the cache row came with the user (the API's authentication joins
    it); otherwise one query. A cache row that an expiry has overtaken is not
    trusted: the answer then comes from the tables, read-only.
    """
    cached = getattr(user, "_sv_effective", None)
    if cached is not None:
        return cached
    try:
        cache = user.permission_cache
    except PermissionCache.DoesNotExist:
        cache = None
    if cache is None or (cache.valid_until is not None and cache.valid_until <= _now()):
        effective = permissions_compute(user_ids=[user.pk]).get(user.pk) or Effective(
            frozenset(), (), None
        )
    else:
        effective = Effective(frozenset(cache.permissions), tuple(cache.roles), cache.valid_until)
    user._sv_effective = effective
    return effective


def permissions_for_user(user) -> frozenset[str]:
    """The permissions `user` holds now: none if inactive or anonymous, `*` for superusers."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return frozenset()
    if user.is_superuser:
        return frozenset({WILDCARD})
    return effective_for_user(user).permissions


def user_has_permission(user, permission: str) -> bool:
    return any(permission_matches(g, permission) for g in permissions_for_user(user))


def user_holds_all(user, permissions: Iterable[str]) -> bool:
    """Whether `user` holds every one of `permissions` (wildcards compared as strings too)."""
    held = permissions_for_user(user)
    return all(any(permission_matches(g, wanted) for g in held) for wanted in permissions)


def role_grantable_by(actor, role: Role) -> bool:
    """Grant only what you hold: whether `actor` holds every permission of `role`."""
    return user_holds_all(actor, role.permissions)


def permissions_held_until(user, permissions: Iterable[str]) -> datetime | None:
    """Until when `user`, who holds `permissions` now, keeps all of them (None: without end).

    A permission held through several roles lasts as long as the longest of them.
    """
    if user.is_superuser:
        return None
    assignments = list(user_assignments(user_id=user.pk))
    ends = []
    for wanted in permissions:
        covering = [
            a.expires_at
            for a in assignments
            if any(permission_matches(g, wanted) for g in a.role.permissions)
        ]
        if None not in covering:
            ends.append(max(covering, default=_now()))
    return min(ends, default=None)


def user_may_act_on(actor, user) -> bool:
    """The privilege rule: whether `actor` may change, ban, deactivate, delete, demote or
    revoke `user`, that is hold every permission `user` holds (a superuser: be one).

    `user`'s permissions are read from the tables, active or not: reactivating a user
    gives their permissions back. None (the system: commands, sign-up) may do anything.
    """
    if actor is None:
        return True
    if user.is_superuser:
        return actor.is_superuser and actor.is_active
    held = permissions_compute(user_ids=[user.pk]).get(user.pk)
    return held is None or user_holds_all(actor, held.permissions)


def permission_sources(user) -> dict[str, list[str]]:
    """Each effective permission of `user` and the roles (or superuser status) it comes from."""
    sources: dict[str, list[str]] = {}
    if user.is_superuser:
        sources[WILDCARD] = ["superuser"]
    for assignment in user_assignments(user_id=user.pk):
        for permission in assignment.role.permissions:
            sources.setdefault(permission, []).append(assignment.role.name)
    return dict(sorted(sources.items()))


def _active_assignments(*, user_id: str) -> QuerySet[UserRole]:
    return UserRole.objects.filter(assignment_active(_now()), user_id=user_id).order_by(
        "role__name"
    )


def user_assignments(*, user_id: str) -> QuerySet[UserRole]:
    """A user's current (unexpired) assignments, with their roles."""
    return _active_assignments(user_id=user_id).select_related("role")


def users_with_roles(*, role: str | None = None) -> QuerySet[User]:
    """Users, each with `role_list` (their current roles as JSON), in one query.

    `role` keeps only users who currently hold the role of that name.
    """
    now = _now()
    roles = (
        UserRole.objects.filter(assignment_active(now), user_id=OuterRef("pk"))
        .order_by()
        .values("user_id")
        .annotate(
            items=JSONBAgg(
                JSONObject(id="role_id", name="role__name", expires_at="expires_at"),
                order_by="role__name",
            )
        )
        .values("items")
    )
    users = User.objects.annotate(role_list=Subquery(roles))
    if role is not None:
        # The role's id as a scalar subquery (an InitPlan): each user is then one probe
        # of the (user_id, role_id) unique index, and a page stops after 50 hits.
        role_id = Subquery(Role.objects.filter(name=role).values("pk")[:1])
        users = users.filter(
            Exists(
                UserRole.objects.filter(
                    assignment_active(now), user_id=OuterRef("pk"), role_id=role_id
                )
            )
        )
    return users


# The columns of a user in the admin list, in its output order; the datetimes
# among them come as text.
USER_LIST_FIELDS = (
    "id",
    "email",
    "email_verified",
    "name",
    "image",
    "is_active",
    "is_staff",
    "is_superuser",
    "last_login",
    "created_at",
    "updated_at",
)
_USER_LIST_DATETIMES = {"last_login", "created_at", "updated_at"}


def _drf_datetime_sql(column: str) -> str:
    # A timestamptz as DRF's DateTimeField writes it in UTC: "...T18:20:08.123456Z",
    # the fraction left out when it is zero. Formatting here spares parsing the
    # value into a datetime and formatting it again, per column and row.
    return (
        f"to_char({column} AT TIME ZONE 'UTC', CASE WHEN date_part('microseconds', {column})"
        """::int %% 1000000 = 0 THEN 'YYYY-MM-DD"T"HH24:MI:SS"Z"'"""
        """ ELSE 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"' END)"""
    )


# One window of users by id, each joined to its current roles (a row per role,
# or one with NULLs): what users_with_roles() gives, without the ORM compiling
# it on every request. Only constant fragments (directions, comparison
# operators, the role filter below) and integers (the window) are
# interpolated; values are parameters: $1 the time, then the others in order.
# LIMIT is written out: with a parameter there, PostgreSQL never settles on
# the prepared statement's generic plan, and plans again on each run.
_USER_LIST_COLUMNS = ", ".join(
    _drf_datetime_sql(f"u.{name}") if name in _USER_LIST_DATETIMES else f"u.{name}"
    for name in USER_LIST_FIELDS
)
_USERS_PAGE_SQL = f"""
SELECT {_USER_LIST_COLUMNS},
       ur.role_id, r.name, {_drf_datetime_sql("ur.expires_at")}
FROM (
    SELECT {", ".join(USER_LIST_FIELDS)} FROM {User._meta.db_table} u
    WHERE {{where}}
    ORDER BY u.id {{direction}}
    LIMIT {{limit}} OFFSET {{offset}}
) u
LEFT JOIN {UserRole._meta.db_table} ur
       ON ur.user_id = u.id AND {active_sql("ur", "$1")}
LEFT JOIN {Role._meta.db_table} r ON r.id = ur.role_id
ORDER BY u.id {{direction}}, r.name
"""  # noqa: S608

# As in users_with_roles(): the role's id as a scalar subquery (an InitPlan), then
# one probe of the (user_id, role_id) unique index per user.
_HOLDS_ROLE_SQL = f"""EXISTS (
    SELECT 1 FROM {UserRole._meta.db_table} h
    WHERE h.user_id = u.id AND {active_sql("h", "$1")}
      AND h.role_id = (SELECT id FROM {Role._meta.db_table} WHERE name = {{role}})
)"""  # noqa: S608


def users_with_roles_window(
    *,
    role: str | None = None,
    descending: bool = True,
    bound: tuple[str, str] | None = None,
    offset: int = 0,
    limit: int,
) -> list[dict]:
    """`limit` users after `offset` in id order, as dicts with their current `roles`.

    The same users and roles as users_with_roles(), in one statement with
    nothing left to compile or convert: the API's user list runs it on every
    page. `bound` is None or ("<" or ">", id) to start after a cursor. Each
    dict holds USER_LIST_FIELDS, datetimes already written as the API writes
    them, and `roles` shaped as users_with_roles()'s `role_list`: [{"id",
    "name", "expires_at"}] by name, `expires_at` written as the API writes it.
    """
    limit, offset = int(limit), int(offset)
    where, params, shape = ["true"], [_now()], ["desc" if descending else "asc"]
    if bound is not None:
        operator, position = bound
        params.append(position)
        where.append(f"u.id {'<' if operator == '<' else '>'} ${len(params)}")
        shape.append("before" if operator == "<" else "after")
    if role is not None:
        params.append(role)
        where.append(_HOLDS_ROLE_SQL.replace("{role}", f"${len(params)}"))
        shape.append("role")
    sql = (
        _USERS_PAGE_SQL.replace("{where}", " AND ".join(where))
        .replace("{direction}", "DESC" if descending else "ASC")
        .replace("{limit}", str(limit))
        .replace("{offset}", str(offset))
    )
    with connection.cursor() as cursor:
        execute_prepared(
            cursor, name=f"sv_users_{'_'.join(shape)}_{limit}_{offset}", sql=sql, params=params
        )
        rows = cursor.fetchall()
    users: list[dict] = []
    width = len(USER_LIST_FIELDS)
    last_id = roles = None
    for row in rows:
        if row[0] != last_id:
            user = dict(zip(USER_LIST_FIELDS, row[:width], strict=True))
            user["roles"] = roles = []
            users.append(user)
            last_id = row[0]
        if row[width] is not None:
            roles.append({"id": row[width], "name": row[width + 1], "expires_at": row[width + 2]})
    return users
