"""Writes to the permissions schema; the permission cache is kept right in the same transaction."""

from collections.abc import Iterable
from datetime import datetime

from django.db import connection, transaction

from audit_app.services import audit_record
from auth_app.models import User

from .models import PermissionCache, Role, UserRole

# Only model table names are interpolated; values go in as parameters.
_REFRESH_CACHE_SQL = f"""
INSERT INTO {PermissionCache._meta.db_table} AS cache
    (user_id, permissions, roles, computed_at, valid_until)
SELECT u.id,
       CASE WHEN u.is_superuser THEN ARRAY['*']::varchar[]
            ELSE coalesce(granted.permissions, '{{}}') END,
       coalesce(granted.roles, '{{}}'),
       now(),
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
    WHERE ur.user_id = u.id AND (ur.expires_at IS NULL OR ur.expires_at > now())
) granted ON true
WHERE u.id = ANY(%s)
ON CONFLICT (user_id) DO UPDATE
SET permissions = EXCLUDED.permissions,
    roles = EXCLUDED.roles,
    computed_at = EXCLUDED.computed_at,
    valid_until = EXCLUDED.valid_until
"""  # noqa: S608


def _lock_users(user_ids: Iterable[str]) -> None:
    # Serialise permission changes per user: without it, two concurrent grants
    # each recompute the cache from a snapshot missing the other's row, and
    # the last writer leaves a cache that disagrees with the assignments.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('permissions:' || id, 0))"
            " FROM unnest(%s::text[]) AS id ORDER BY id",
            [sorted(set(user_ids))],
        )


def permission_cache_refresh(*, user_ids: Iterable[str]) -> None:
    """Recompute the cache rows of these users from their assignments, in one statement."""
    with connection.cursor() as cursor:
        cursor.execute(_REFRESH_CACHE_SQL, [list(user_ids)])


def role_grant(
    *,
    user: User,
    role: Role,
    granted_by: User | None = None,
    expires_at: datetime | None = None,
) -> UserRole:
    """Give `user` the role (optionally until `expires_at`), refresh their cache, audit it."""
    with transaction.atomic():
        _lock_users([user.pk])
        assignment = UserRole.objects.create(
            user=user, role=role, granted_by=granted_by, expires_at=expires_at
        )
        permission_cache_refresh(user_ids=[user.pk])
        audit_record(
            event_type="role.assigned",
            actor_id=granted_by.pk if granted_by else None,
            user_id=user.pk,
            target_type="role",
            target_id=role.pk,
            metadata={
                "role": role.name,
                "expires_at": expires_at.isoformat() if expires_at else None,
            },
        )
    return assignment
