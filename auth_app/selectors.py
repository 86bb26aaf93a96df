"""Reads from the identity schema."""

import functools
from dataclasses import dataclass

from django.db import DEFAULT_DB_ALIAS, connections
from django.utils import timezone

from sv_sdk.db.prepared import execute_prepared
from sv_sdk.db.rows import ModelRow, model_row

from .models import Session, User, Verification
from .tokens import token_hash


@dataclass(frozen=True)
class _SessionLookup:
    sql: str
    session: ModelRow
    user: ModelRow
    cache: ModelRow
    cache_relation: object  # User -> permission cache, the reverse one-to-one


@functools.cache
def _session_lookup() -> _SessionLookup:
    """The statement behind session_get_by_token, built once per process.

    Every authenticated API request runs it. Through the ORM the same query
    (`select_related("user", "user__permission_cache")`) was compiled anew each
    time, which cost more than the rest of the request; the SQL and the recipe
    for its rows never change, so they are made once. Only table and column
    names from the models are interpolated; the token's hash and the time are
    parameters.
    """
    # The permission cache is a reverse one-to-one named by string, so this app
    # imports nothing of permissions_app.
    cache_relation = User._meta.get_field("permission_cache")
    session, user, cache = (
        model_row(Session),
        model_row(User),
        model_row(cache_relation.related_model),
    )
    sql = (
        f"SELECT {session.columns('s')}, {user.columns('u')}, {cache.columns('pc')}"  # noqa: S608
        f" FROM {Session._meta.db_table} s"
        f' JOIN {User._meta.db_table} u ON u."id" = s."user_id"'
        f" LEFT JOIN {cache.model._meta.db_table} pc"
        f' ON pc."{cache_relation.field.column}" = u."id"'
        ' WHERE s."token_hash" = $1 AND s."expires_at" > $2 LIMIT 1'
    )
    return _SessionLookup(sql, session, user, cache, cache_relation)


def session_get_by_token(*, token: str) -> Session | None:
    """The live session for `token`, with its user, in one query; None if unknown or expired.

    The user's permission cache row rides along (None if the user has none), so
    permission checks on `session.user` cost no query; exactly what
    `select_related("user", "user__permission_cache")` would return.
    """
    if not token or len(token) > 200:
        return None
    lookup = _session_lookup()
    connection = connections[DEFAULT_DB_ALIAS]
    with connection.cursor() as cursor:
        execute_prepared(
            cursor,
            name="sv_session_by_token",
            sql=lookup.sql,
            params=[token_hash(token), timezone.now()],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    row = list(row)
    n_session, n_user = len(lookup.session.attnames), len(lookup.user.attnames)
    session = lookup.session.build(row[:n_session], connection)
    user = lookup.user.build(row[n_session : n_session + n_user], connection)
    cache_values = row[n_session + n_user :]
    # The cache's primary key is NULL when the LEFT JOIN found no row.
    has_cache = cache_values[lookup.cache.pk_index] is not None
    cache = lookup.cache.build(cache_values, connection) if has_cache else None
    # Link the three as select_related does, both ways for the one-to-one.
    Session._meta.get_field("user").set_cached_value(session, user)
    lookup.cache_relation.set_cached_value(user, cache)
    if cache is not None:
        lookup.cache_relation.field.set_cached_value(cache, user)
    return session


def user_get_by_email(*, email: str) -> User | None:
    return User.objects.with_email(email).first()


def user_can_sign_in(user: User) -> bool:
    """Active, and not banned right now."""
    if not user.is_active:
        return False
    return user.banned_until is None or user.banned_until <= timezone.now()


def verifications_usable(*, token: str, purpose: str, repeatable: bool = False):
    """The unexpired verifications of `purpose` for `token`; unused ones only unless
    `repeatable`."""
    usable = Verification.objects.filter(
        value_hash=token_hash(token or ""),
        identifier__startswith=f"{purpose}:",
        expires_at__gt=timezone.now(),
    )
    return usable if repeatable else usable.filter(consumed_at__isnull=True)


def verification_usable(*, token: str, purpose: str) -> bool:
    """Whether `token` would be accepted for `purpose` now, without using it."""
    return verifications_usable(token=token, purpose=purpose).exists()
