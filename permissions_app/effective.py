"""The effective-permission rule in SQL, in one place: who holds what, and the cache rows of it.

A user's effective permissions are the distinct, sorted permissions of the roles
they hold through an unexpired assignment (`*` alone for a superuser), with
those roles' names and the earliest expiry among them. Only constant fragments
and table names are interpolated; values always go in as parameters.
"""

from auth_app.models import User

from .models import PermissionCache, Role, UserRole

_CACHE = PermissionCache._meta.db_table


def active_sql(alias: str, now: str) -> str:
    """The condition of a current (unexpired) assignment `alias`, at the SQL value `now`.

    The one definition of "active" in SQL; selectors.assignment_active() is the same for the ORM.
    """
    return f"({alias}.expires_at IS NULL OR {alias}.expires_at > {now})"


# The truth, computed from users, user_roles and roles, for the users that
# `{where}` selects.
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
    """The effective-permissions query for the users matching the constant SQL `where`.

    Rows (user_id, permissions, roles, valid_until); the time is %(now)s.
    """
    return _EFFECTIVE_SQL.replace("{where}", where)


_UPSERT_SQL = f"""
INSERT INTO {_CACHE} AS cache (user_id, permissions, roles, computed_at, valid_until)
SELECT truth.user_id, truth.permissions, truth.roles, %(now)s, truth.valid_until
FROM ({{truth}}) truth
ON CONFLICT (user_id) DO UPDATE
SET permissions = EXCLUDED.permissions,
    roles = EXCLUDED.roles,
    computed_at = EXCLUDED.computed_at,
    valid_until = EXCLUDED.valid_until
"""  # noqa: S608

# The cache rows that disagree with the truth (or are missing), for the users
# that `{where}` selects: the one comparison of cache and truth, read by the
# invariant checks and rewritten by cache_repair_sql.
_CACHE_DISAGREEMENTS_SQL = f"""
SELECT truth.user_id, cache.user_id IS NULL AS missing,
       cache.permissions AS old_permissions, truth.permissions,
       cache.roles AS old_roles, truth.roles,
       cache.valid_until AS old_valid_until, truth.valid_until
FROM ({{truth}}) truth
LEFT JOIN {_CACHE} cache ON cache.user_id = truth.user_id
WHERE cache.user_id IS NULL
   OR cache.permissions IS DISTINCT FROM truth.permissions
   OR cache.roles IS DISTINCT FROM truth.roles
   OR cache.valid_until IS DISTINCT FROM truth.valid_until
"""  # noqa: S608

# The disagreements, fixed in the same statement; they come back so the caller
# can report them.
_REPAIR_SQL = f"""
WITH wrong AS ({{wrong}}),
fixed AS (
    INSERT INTO {_CACHE} AS cache (user_id, permissions, roles, computed_at, valid_until)
    SELECT user_id, permissions, roles, %(now)s, valid_until FROM wrong
    ON CONFLICT (user_id) DO UPDATE
    SET permissions = EXCLUDED.permissions,
        roles = EXCLUDED.roles,
        computed_at = EXCLUDED.computed_at,
        valid_until = EXCLUDED.valid_until
)
SELECT * FROM wrong ORDER BY user_id
"""  # noqa: S608


def cache_disagreements_sql(where: str) -> str:
    """The cache rows that disagree with the truth for the users matching `where`.

    Columns: selectors.CacheDisagreement's fields, in order; the time is %(now)s.
    """
    return _CACHE_DISAGREEMENTS_SQL.replace("{truth}", effective_sql(where))


def cache_upsert_sql(where: str) -> str:
    """Write the cache rows of the users matching `where` from the truth (%(now)s: the time)."""
    return _UPSERT_SQL.replace("{truth}", effective_sql(where))


def cache_repair_sql(where: str) -> str:
    """Rewrite the cache rows of the users matching `where` that disagree with the truth.

    Returns cache_disagreements_sql's rows, those it fixed.
    """
    return _REPAIR_SQL.replace("{wrong}", cache_disagreements_sql(where))


# The cache row of a user whose only assignment is the one, without expiry, just
# made in the same transaction (role_grant for a user the same batch inserts):
# the truth (_EFFECTIVE_SQL) of that one role, read with the role's lock held.
# Kept beside the general upsert for the sign-up path's target (user_onboard p50
# <= 3 ms, met at 2.7): the statement took 215 us p50 against the general
# upsert's 430 us for the same new user (mostly planning; 1,500 runs each,
# interleaved, loaded machine). Tests hold the two to the same answer.
NEW_USER_CACHE_SQL = f"""
INSERT INTO {_CACHE} (user_id, permissions, roles, computed_at, valid_until)
SELECT %(user_id)s,
       CASE WHEN %(is_superuser)s THEN ARRAY['*']::varchar[]
            ELSE ARRAY(SELECT DISTINCT p FROM unnest(r.permissions) AS p
                       WHERE p IS NOT NULL ORDER BY p)::varchar[] END,
       ARRAY[r.name]::varchar[], %(now)s, NULL
FROM {Role._meta.db_table} r WHERE r.id = %(role_id)s
"""  # noqa: S608
