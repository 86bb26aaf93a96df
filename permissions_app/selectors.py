"""Reads from the permissions schema: effective permissions, checks and lists."""

import functools
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, connections, router
from django.db.models import Q, QuerySet
from django.utils import timezone

from auth_app.models import User
from sv_sdk.db.batch import Batch, Result
from sv_sdk.db.prepared import execute_prepared
from sv_sdk.db.replicas import on_primary

from .catalogue import WILDCARD
from .effective import active_sql, cache_disagreements_sql, effective_sql
from .models import PermissionCache, Role, UserRole


def clock() -> datetime:
    # The one clock of the permissions domain (selectors and services): tests
    # move it forward to make assignments expire.
    return timezone.now()


def assignment_active(now: datetime) -> Q:
    """effective.active_sql()'s condition as an ORM filter on UserRole."""
    return Q(expires_at__isnull=True) | Q(expires_at__gt=now)


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
            {"now": clock(), "ids": list(user_ids)},
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
            {"now": clock(), "ids": list(user_ids)},
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
        # Permission checks read the primary: a revoked role stops working at once.
        with on_primary():
            cache = user.permission_cache
    except PermissionCache.DoesNotExist:
        cache = None
    if cache is None or (cache.valid_until is not None and cache.valid_until <= clock()):
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
            ends.append(max(covering, default=clock()))
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
    return UserRole.objects.filter(assignment_active(clock()), user_id=user_id).order_by(
        "role__name"
    )


def user_assignments(*, user_id: str) -> QuerySet[UserRole]:
    """A user's current (unexpired) assignments, with their roles."""
    return _active_assignments(user_id=user_id).select_related("role")


def role_find(batch: Batch, *, name: str) -> Result:
    """Queue into `batch` the read of the role called `name`; Role.DoesNotExist if none."""

    def one(roles: list[Role]) -> Role:
        if not roles:
            raise Role.DoesNotExist(f"the {name!r} role is missing")
        return roles[0]

    return batch.select(Role, '"name" = %s', [name], then=one)


# The users-with-roles read behind the users API (list and detail): the one
# definition of that query. Hand-written and prepared because the list is the
# API's busiest page and must stay within 0.8x of a bare DRF endpoint's rate
# (docs/benchmarks.md: 0.81x). Measured in the view, in-process, 100,000 users,
# pages of 50 (loaded 2-core machine, p50): 3.9 ms this way; 9.8 ms with the same
# query through the ORM (a Subquery of JSONBAgg compiled per request, .values());
# 11.6 ms with a serializer per row as well.
# One window of users by id joined to their current roles: a row per role held
# (one with NULL role columns for a user holding none), in user order, then by
# role name; users_with_roles folds each user's rows into one. Aggregating the
# roles into a JSON array per user in a lateral subquery instead (one row per
# user) cost more on both sides (issue 20, 100,000 users, pages of 51, CPU per
# page on a loaded 2-core machine, the server's backend and this process
# measured apart): the server 0.38 ms against 0.24 ms this way (0.62 ms against
# 0.46 ms by role), Python 0.53 ms against 0.38 ms (parsing a JSON array per
# row). Roles are joined last (every assignment has its role): the planner then
# reads the three-row table once instead of probing its index per assignment,
# 0.42 against 0.38 ms of execution a page by role (EXPLAIN ANALYZE, median).
# Only column names of the model, constant operators and directions go into the
# text; values are parameters: $1 the time, then the rest.
_USERS_WINDOW = """
SELECT {columns}, r.id, r.name, ur.expires_at
FROM ({window}) u
LEFT JOIN {user_roles} ur ON ur.user_id = u.id AND {ur_active}
LEFT JOIN {roles} r ON r.id = ur.role_id
ORDER BY u.id {direction}, r.name
"""
_ALL_USERS = """
    SELECT {columns} FROM {users} u
    WHERE {where}
    ORDER BY u.id {direction}
    LIMIT {limit} OFFSET {offset}
"""
# By role, the window is cut from the role's current assignments in user order
# (the (role_id, user_id) index, user_roles_role_user_idx) before users are
# joined: a page reads its 51 assignments. Probing every user for the role read
# all users down to the 51st holder (1 in 16 holds `auditor` in the benchmark:
# 8.9 ms a page at 100,000 users; this way 0.6 ms, docs/benchmarks.md).
_HOLDERS = """
    SELECT {columns} FROM (
        SELECT h.user_id FROM {user_roles} h
        WHERE h.role_id = (SELECT id FROM {roles} WHERE name = ${role}) AND {h_active}
          AND {where}
        ORDER BY h.user_id {direction}
        LIMIT {limit} OFFSET {offset}
    ) h
    JOIN {users} u ON u.id = h.user_id
"""


@functools.lru_cache(maxsize=64)
def _users_window_sql(
    columns: tuple[str, ...], conditions: tuple[str, ...], descending: bool, limit, offset
) -> str:
    """The users-with-roles statement; `conditions` are "=", "<" or ">" against the id
    and "role", in the order of their parameters from $2."""
    parts = {
        "users": User._meta.db_table,
        "user_roles": UserRole._meta.db_table,
        "roles": Role._meta.db_table,
        "ur_active": active_sql("ur", "$1"),
        "h_active": active_sql("h", "$1"),
        "columns": ", ".join(f"u.{User._meta.get_field(name).column}" for name in columns),
        "direction": "DESC" if descending else "ASC",
        # LIMIT written out: with a parameter there PostgreSQL never settles on
        # the prepared statement's generic plan, and plans again on every run.
        "limit": int(limit) if limit is not None else "ALL",
        "offset": int(offset),
    }
    by_role = "role" in conditions
    key = "h.user_id" if by_role else "u.id"
    where = []
    for n, condition in enumerate(conditions, start=2):
        if condition == "role":
            parts["role"] = n
        else:
            where.append(f"{key} {condition} ${n}")
    window = (_HOLDERS if by_role else _ALL_USERS).format(
        where=" AND ".join(where) or "true", **parts
    )
    return _USERS_WINDOW.format(window=window, **parts)


def users_with_roles(
    *,
    fields: tuple[str, ...],
    user_id: str | None = None,
    role: str | None = None,
    descending: bool = True,
    bound: tuple[str, str] | None = None,
    offset: int = 0,
    limit: int | None = None,
) -> list[dict]:
    """Users in id order, as dicts of `fields` (model field names, "id" among them) and their
    current `roles`.

    `user_id` keeps one user, `role` those who currently hold the role of that
    name; `bound` is None or ("<" or ">", id) to start after a cursor, then
    `offset` and `limit` make the window. `roles` is [{"id", "name",
    "expires_at"}] by name, `expires_at` an aware datetime or None.
    """
    conditions, params = [], [clock()]
    if user_id is not None:
        conditions.append("=")
        params.append(user_id)
    if bound is not None:
        operator, position = bound
        conditions.append("<" if operator == "<" else ">")
        params.append(position)
    if role is not None:
        conditions.append("role")
        params.append(role)
    fields = tuple(fields)
    sql = _users_window_sql(fields, tuple(conditions), descending, limit, offset)
    # One statement name per text.
    name = f"sv_users_{zlib.crc32(sql.encode()):08x}"
    # A replica's when a lag-tolerant view asks (sv_sdk.db.replicas), else the primary's.
    with connections[router.db_for_read(User)].cursor() as cursor:
        execute_prepared(cursor, name=name, sql=sql, params=params)
        rows = cursor.fetchall()
    width = len(fields)
    key = fields.index("id")
    users = []
    last = None
    for row in rows:
        if row[key] != last:  # a user's first row (its rows are adjacent)
            last = row[key]
            user = dict(zip(fields, row[:width], strict=True))
            roles = user["roles"] = []
            users.append(user)
        role_id, role_name, expires_at = row[width:]
        if role_id is not None:
            roles.append({"id": role_id, "name": role_name, "expires_at": expires_at})
    return users


def mfa_required_since(user: User) -> datetime | None:
    """Since when `user` must hold a second factor, or None if they need not.

    Staff (the admin is theirs) need one since they exist; holders of a role flagged
    `requires_mfa` since its earliest current grant. SV_MFA_ENFORCE=False relaxes both,
    for development.
    """
    from django.conf import settings

    if not settings.SV_MFA_ENFORCE:
        return None
    if user.is_staff or user.is_superuser:
        return user.created_at
    return (
        UserRole.objects.filter(assignment_active(clock()), user=user, role__requires_mfa=True)
        .order_by("granted_at")
        .values_list("granted_at", flat=True)
        .first()
    )
