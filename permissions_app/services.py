"""Writes to the permissions schema; the permission cache is kept right in the same transaction.

Locking, so that concurrent changes never leave a cache row that disagrees with
the tables (each refresh reads a snapshot, and a snapshot that misses another
transaction's uncommitted change would otherwise win):

- a change to one user's assignments takes an exclusive advisory lock on the
  user, then a shared one on every role involved or held by the user;
- a change to a role (edit, delete) takes an exclusive lock on all role writes
  and then on the role, so it waits for grants and revokes of its holders and
  they wait for it.

Locks are transaction-scoped and always taken users first, then roles, each
sorted, so two writers never wait for each other in a cycle.
"""

from collections.abc import Iterable
from datetime import datetime

from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db import IntegrityError, connection, transaction

from audit_app.models import AuditLog
from audit_app.services import audit_event, audit_record, audit_write
from auth_app.models import User
from sv_sdk import metrics
from sv_sdk.db.batch import Batch
from sv_sdk.errors import NotFound, ValidationFailed
from sv_sdk.ids import new_id

from . import selectors
from .catalogue import SYSTEM_ROLE_CORE, unknown_permissions
from .errors import (
    AssignmentNotFound,
    PrivilegeExceeded,
    RoleInUse,
    RoleNameTaken,
    SystemRole,
    UnknownPermission,
)
from .models import PermissionCache, Role, UserRole

_CACHE = PermissionCache._meta.db_table
_USER_ROLES = UserRole._meta.db_table

_UPSERT_CACHE_SQL = f"""
INSERT INTO {_CACHE} AS cache (user_id, permissions, roles, computed_at, valid_until)
SELECT truth.user_id, truth.permissions, truth.roles, %(now)s, truth.valid_until
FROM ({{truth}}) truth
ON CONFLICT (user_id) DO UPDATE
SET permissions = EXCLUDED.permissions,
    roles = EXCLUDED.roles,
    computed_at = EXCLUDED.computed_at,
    valid_until = EXCLUDED.valid_until
"""  # noqa: S608

# The rows of the cache that disagree with the truth (selectors.cache_disagreements_sql),
# fixed in the same statement; the disagreements come back so the caller can report them.
_REPAIR_CACHE_SQL = f"""
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

_GRANT_SQL = f"""
INSERT INTO {_USER_ROLES} AS ur (id, user_id, role_id, granted_by_id, granted_at, expires_at)
VALUES (%(id)s, %(user_id)s, %(role_id)s, %(granted_by_id)s, %(now)s, %(expires_at)s)
ON CONFLICT (user_id, role_id) DO UPDATE
SET granted_by_id = EXCLUDED.granted_by_id,
    granted_at = EXCLUDED.granted_at,
    expires_at = EXCLUDED.expires_at
RETURNING id, xmax = 0
"""  # noqa: S608

# The cache row of a user whose only assignment is the one, without expiry, just
# made in the same transaction: the truth (selectors.effective_sql) of that one
# role, read with the role's lock held. Cheaper to plan than the general refresh,
# which matters on the sign-up path; tests hold the two to the same answer.
_NEW_USER_CACHE_SQL = f"""
INSERT INTO {_CACHE} (user_id, permissions, roles, computed_at, valid_until)
SELECT %(user_id)s,
       CASE WHEN %(is_superuser)s THEN ARRAY['*']::varchar[]
            ELSE ARRAY(SELECT DISTINCT p FROM unnest(r.permissions) AS p
                       WHERE p IS NOT NULL ORDER BY p)::varchar[] END,
       ARRAY[r.name]::varchar[], %(now)s, NULL
FROM {Role._meta.db_table} r WHERE r.id = %(role_id)s
"""  # noqa: S608

_LOCK = "SELECT pg_advisory_xact_lock{mode}(hashtextextended(%s || id, 0))"
_HELD_ROLES = f"""
FROM (SELECT unnest(%s::text[]) UNION SELECT role_id FROM {_USER_ROLES} WHERE user_id = ANY(%s))
AS roles(id) ORDER BY id
"""  # noqa: S608

# A grant's shared role lock, taken by role name; returns (lock, the role's id).
_ROLE_LOCK_SQL = _LOCK.format(mode="_shared") + f", id FROM {Role._meta.db_table} WHERE name = %s"


def _lock_users(user_ids: Iterable[str], role_ids: Iterable[str] = ()) -> None:
    """Serialise changes to these users' assignments with each other and with role edits."""
    user_ids = sorted(set(user_ids))
    with connection.cursor() as cursor:
        # The volatile lock function runs after ORDER BY, so locks come in order.
        cursor.execute(
            _LOCK.format(mode="") + " FROM unnest(%s::text[]) AS id ORDER BY id",
            ["permissions:user:", user_ids],
        )
        # Read after the user locks: the roles these users hold cannot change now.
        cursor.execute(
            _LOCK.format(mode="_shared") + _HELD_ROLES,
            ["permissions:role:", list(role_ids), user_ids],
        )


def _lock_role(role_id: str) -> None:
    """Serialise a change to a role with every other role change and with its holders' grants."""
    with connection.cursor() as cursor:
        cursor.execute(
            _LOCK.format(mode="") + " FROM (VALUES ('')) AS r(id)", ["permissions:roles"]
        )
        cursor.execute(
            _LOCK.format(mode="") + " FROM (VALUES (%s)) AS r(id)", ["permissions:role:", role_id]
        )


def _forget(user) -> None:
    # The effective permissions and the joined cache row may be memoised on
    # the caller's user object; after a change they are stale.
    if isinstance(user, User):
        user.__dict__.pop("_sv_effective", None)
        user._state.fields_cache.pop("permission_cache", None)


def permission_cache_refresh(*, user_ids: Iterable[str]) -> None:
    """Recompute the cache rows of these users from their assignments, in one statement."""
    with connection.cursor() as cursor:
        cursor.execute(
            _UPSERT_CACHE_SQL.replace("{truth}", selectors.effective_sql("u.id = ANY(%(ids)s)")),
            {"now": selectors._now(), "ids": list(user_ids)},
        )
        metrics.count_on_commit(metrics.PERMISSION_CACHE_REBUILDS, cursor.rowcount)


def _refresh_role_holders(role_id: str) -> int:
    """Recompute the cache of everyone assigned `role_id`, set-based; return the row count."""
    holders = f"u.id IN (SELECT user_id FROM {_USER_ROLES} WHERE role_id = %(role_id)s)"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(
            _UPSERT_CACHE_SQL.replace("{truth}", selectors.effective_sql(holders)),
            {"now": selectors._now(), "role_id": role_id},
        )
        metrics.count_on_commit(metrics.PERMISSION_CACHE_REBUILDS, cursor.rowcount)
        return cursor.rowcount


def permission_cache_repair(*, user_ids: Iterable[str]) -> list[selectors.CacheDisagreement]:
    """Compare these users' cache rows with the truth and rewrite those that differ."""
    user_ids = list(user_ids)
    with transaction.atomic():
        _lock_users(user_ids)
        with connection.cursor() as cursor:
            cursor.execute(
                _REPAIR_CACHE_SQL.replace(
                    "{wrong}", selectors.cache_disagreements_sql("u.id = ANY(%(ids)s)")
                ),
                {"now": selectors._now(), "ids": user_ids},
            )
            return [selectors.CacheDisagreement(*row) for row in cursor.fetchall()]


# The privilege rule (docs/security.md), one home for every write path. An actor
# of None is the system (sign-up, commands run without --actor): it may do anything.


def privilege_check(*, actor: User | None, user: User) -> None:
    """Refuse unless `actor` may change, ban, deactivate, delete, demote or revoke `user`."""
    if not selectors.user_may_act_on(actor, user):
        if user.is_superuser:
            raise PrivilegeExceeded("Only a superuser can act on a superuser.")
        raise PrivilegeExceeded(
            "You can act only on users whose permissions you all hold yourself."
        )


def superuser_change_check(*, actor: User | None) -> None:
    """Refuse unless `actor` may make (or unmake) a superuser: only a superuser may."""
    if actor is not None and not actor.is_superuser:
        raise PrivilegeExceeded("Only a superuser can make or unmake a superuser.")


def role_grant_check(
    *, actor: User | None, user: User, role: Role, expires_at: datetime | None
) -> None:
    """Refuse a grant (or renewal) of `role` to `user` by `actor` that breaks a rule.

    The expiry lies in the future; nobody grants to themselves; the actor holds
    the role's permissions (grant only what you hold) at least as long as the
    grant lasts, and may act on `user`. A renewal passes the same checks as a
    fresh grant, so it never lengthens an expiry the actor could not have granted.
    """
    if expires_at is not None and expires_at <= selectors._now():
        raise ValidationFailed(errors={"expires_at": ["The expiry must be in the future."]})
    if actor is None:
        return
    if actor.pk == user.pk:
        raise PrivilegeExceeded("Nobody grants or renews roles on themselves.")
    if not selectors.role_grantable_by(actor, role):
        raise PrivilegeExceeded("You cannot grant permissions you do not hold yourself.")
    until = selectors.permissions_held_until(actor, role.permissions)
    if until is not None and (expires_at is None or expires_at > until):
        raise PrivilegeExceeded(
            f"You hold this role's permissions only until {until.isoformat()};"
            " a grant cannot last longer."
        )
    privilege_check(actor=actor, user=user)


def role_change_check(
    *,
    actor: User | None,
    role: Role | None,
    name: str | None = None,
    permissions: Iterable[str] | None = None,
) -> None:
    """Refuse the creation (`role` None), change or deletion of a role that breaks a rule.

    Only superusers edit system roles; anyone else must hold every permission
    the role has and is given. System roles keep their names and their core
    permissions (catalogue.SYSTEM_ROLE_CORE), even for a superuser.
    """
    if actor is not None:
        if role is not None and role.is_system and not actor.is_superuser:
            raise PrivilegeExceeded("Only a superuser can change a system role.")
        touched = {*(role.permissions if role else ()), *(permissions or ())}
        if not selectors.user_holds_all(actor, touched):
            raise PrivilegeExceeded(
                "You cannot grant or change permissions you do not hold yourself."
            )
    if role is not None and role.is_system:
        if name is not None and name != role.name:
            raise SystemRole("System roles cannot be renamed.")
        lost = sorted(SYSTEM_ROLE_CORE.get(role.name, set()) - set(permissions or ()))
        if permissions is not None and lost:
            raise SystemRole(f"The system role {role.name} keeps {', '.join(lost)}.")


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    try:
        if not name:
            raise ValidationError("This field may not be blank.")
        if len(name) > Role._meta.get_field("name").max_length:
            raise ValidationError("At most 100 characters.")
        validate_slug(name)
    except ValidationError as exc:
        raise ValidationFailed(errors={"name": list(exc.messages)}) from None
    return name


def _clean_permissions(permissions: Iterable[str]) -> list[str]:
    permissions = [str(p).strip() for p in permissions]
    unknown = unknown_permissions(permissions)
    if unknown:
        raise UnknownPermission(
            f"Not in the permission catalogue: {', '.join(unknown)}.",
            errors={"permissions": [f"Unknown permission {p!r}." for p in unknown]},
        )
    return sorted(set(permissions))


def role_create(
    *,
    name: str,
    description: str = "",
    permissions: Iterable[str] = (),
    actor: User | None = None,
) -> Role:
    """Create a role holding catalogue permissions; raise RoleNameTaken on a duplicate name."""
    role = Role(
        name=_clean_name(name),
        description=(description or "").strip(),
        permissions=_clean_permissions(permissions),
    )
    role_change_check(actor=actor, role=None, permissions=role.permissions)
    with transaction.atomic():
        try:
            with transaction.atomic():
                role.save(force_insert=True)
        except IntegrityError:
            raise RoleNameTaken() from None
        audit_record(
            event_type="role.created",
            actor_id=actor.pk if actor else None,
            target_type="role",
            target_id=role.pk,
            metadata={"role": role.name, "permissions": role.permissions},
        )
    return role


def role_update(
    *,
    role: Role,
    name: str | None = None,
    description: str | None = None,
    permissions: Iterable[str] | None = None,
    actor: User | None = None,
) -> Role:
    """Change a role; every holder's cache follows in the same transaction.

    See role_change_check for who may: system roles keep their names (code looks
    them up by name) and their core permissions.
    """
    with transaction.atomic():
        _lock_role(role.pk)
        current = Role.objects.filter(pk=role.pk).first()
        if current is None:
            raise NotFound("No such role.")
        wanted = {}
        if name is not None:
            wanted["name"] = _clean_name(name)
        if description is not None:
            wanted["description"] = description.strip()
        if permissions is not None:
            wanted["permissions"] = _clean_permissions(permissions)
        role_change_check(
            actor=actor,
            role=current,
            name=wanted.get("name"),
            permissions=wanted.get("permissions"),
        )
        changes = {
            field: {"from": getattr(current, field), "to": value}
            for field, value in wanted.items()
            if getattr(current, field) != value
        }
        if changes:
            for field, change in changes.items():
                setattr(current, field, change["to"])
            try:
                with transaction.atomic():
                    current.save(update_fields=[*changes, "updated_at"])
            except IntegrityError:
                raise RoleNameTaken() from None
            holders = 0
            if changes.keys() & {"name", "permissions"}:
                holders = _refresh_role_holders(current.pk)
            audit_record(
                event_type="role.updated",
                actor_id=actor.pk if actor else None,
                target_type="role",
                target_id=current.pk,
                metadata={"role": current.name, "changes": changes, "holders": holders},
            )
    for field in ("name", "description", "permissions", "updated_at"):
        setattr(role, field, getattr(current, field))
    return role


def role_delete(*, role: Role, force: bool = False, actor: User | None = None) -> None:
    """Delete a role. System roles never; a role someone holds only with `force`,
    which revokes it from every holder (their caches follow in the same transaction)."""
    with transaction.atomic():
        _lock_role(role.pk)
        current = Role.objects.filter(pk=role.pk).first()
        if current is None:
            raise NotFound("No such role.")
        if current.is_system:
            raise SystemRole("System roles cannot be deleted.")
        role_change_check(actor=actor, role=current)
        now = selectors._now()
        assignments = UserRole.objects.filter(role=current)
        holders = assignments.filter(selectors.assignment_active(now)).count()
        if holders and not force:
            raise RoleInUse(
                f"The role is assigned to {holders} user(s); revoke it first or force the deletion."
            )
        with connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {_USER_ROLES} WHERE role_id = %s RETURNING user_id",  # noqa: S608
                [current.pk],
            )
            user_ids = [user_id for (user_id,) in cursor.fetchall()]
        current.delete()
        if user_ids:
            permission_cache_refresh(user_ids=user_ids)
        audit_record(
            event_type="role.deleted",
            actor_id=actor.pk if actor else None,
            target_type="role",
            target_id=current.pk,
            metadata={
                "role": current.name,
                "permissions": current.permissions,
                "revoked_from": holders,
            },
        )


def role_grant(
    *,
    user: User,
    role: Role,
    granted_by: User | None = None,
    expires_at: datetime | None = None,
) -> UserRole:
    """Give `user` the role (optionally until `expires_at`), refresh their cache, audit it.

    Granting a role the user already has renews that assignment with the new
    expiry; the returned assignment's `renewed` attribute says which happened.
    Grants and renewals alike pass role_grant_check.
    """
    role_grant_check(actor=granted_by, user=user, role=role, expires_at=expires_at)
    now = selectors._now()
    # No savepoint when nested: nothing in this block raises an error a caller
    # could recover from (any failure is a database error, which aborts the
    # caller's transaction anyway), and a savepoint costs two round trips.
    with transaction.atomic(savepoint=False):
        _lock_users([user.pk], role_ids=[role.pk])
        with connection.cursor() as cursor:
            cursor.execute(*_grant_statement(user, role, granted_by, now, expires_at))
            assignment_id, created = cursor.fetchone()
        permission_cache_refresh(user_ids=[user.pk])
        audit_write(_grant_event(user, role, granted_by, expires_at, renewed=not created))
    _forget(user)
    assignment = UserRole(
        id=assignment_id,
        user=user,
        role=role,
        granted_by=granted_by,
        granted_at=now,
        expires_at=expires_at,
    )
    assignment._state.adding = False
    assignment._state.db = connection.alias
    assignment.renewed = not created
    return assignment


def role_lock_statement(role_name: str) -> tuple[str, list]:
    """Take the shared lock a grant of the role named `role_name` takes; return (_, its id).

    See the module's notes. The role's permissions must be read by a later
    statement, whose snapshot is taken after the lock.
    """
    return _ROLE_LOCK_SQL, ["permissions:role:", role_name]


def role_grant_new_user(
    batch: Batch, *, user: User, role_id: str, role_name: str, granted_by: User | None
) -> AuditLog:
    """role_grant's writes, queued into `batch`, for a user inserted earlier in the same batch.

    The user holds no role yet, and no other transaction can see them before
    this one commits: the only lock needed is role_lock_statement's, which the
    caller takes in an earlier round trip (so the cache reads the role after it).
    Returns the role.assigned event, not yet written.
    """
    role = Role(id=role_id, name=role_name)  # what the statements and the event need of it
    now = selectors._now()
    batch.add(*_grant_statement(user, role, granted_by, now, None))
    batch.add(
        _NEW_USER_CACHE_SQL,
        {"user_id": user.pk, "is_superuser": user.is_superuser, "now": now, "role_id": role_id},
    )
    _forget(user)
    return _grant_event(user, role, granted_by, None, renewed=False)


def _grant_statement(user, role, granted_by, now, expires_at) -> tuple[str, dict]:
    return _GRANT_SQL, {
        "id": new_id(),
        "user_id": user.pk,
        "role_id": role.pk,
        "granted_by_id": granted_by.pk if granted_by else None,
        "now": now,
        "expires_at": expires_at,
    }


def _grant_event(user, role, granted_by, expires_at, *, renewed: bool) -> AuditLog:
    return audit_event(
        event_type="role.assigned",
        actor_id=granted_by.pk if granted_by else None,
        user_id=user.pk,
        target_type="role",
        target_id=role.pk,
        metadata={
            "role": role.name,
            "expires_at": expires_at.isoformat() if expires_at else None,
            "renewed": renewed,
        },
    )


def role_revoke(*, user: User, role: Role, revoked_by: User | None = None) -> None:
    """Take the role away from `user`; raise AssignmentNotFound if they do not have it.

    Refused unless `revoked_by` may act on `user` (privilege_check).
    """
    privilege_check(actor=revoked_by, user=user)
    with transaction.atomic():
        _lock_users([user.pk], role_ids=[role.pk])
        deleted, _ = UserRole.objects.filter(user=user, role=role).delete()
        if not deleted:
            raise AssignmentNotFound()
        permission_cache_refresh(user_ids=[user.pk])
        audit_record(
            event_type="role.revoked",
            actor_id=revoked_by.pk if revoked_by else None,
            user_id=user.pk,
            target_type="role",
            target_id=role.pk,
            metadata={"role": role.name},
        )
    _forget(user)
