"""What must always be true across the four schemas, checked against the live data."""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from audit_app.models import AuditLog
from audit_app.selectors import audit_verify
from auth_app.models import Passkey, RecoveryCode, TwoFactor, User, Verification
from email_app.models import EmailSend
from permissions_app.catalogue import DEFAULT_USER_ROLE, SUPERUSER_ROLE
from permissions_app.models import Role, UserRole
from permissions_app.selectors import permission_cache_disagreements

BATCH = 1000


@dataclass(frozen=True)
class Violation:
    check: str
    detail: str


def _rows(sql: str, params=None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or {})
        return cursor.fetchall()


def users_without_default_role() -> list[Violation]:
    rows = _rows(
        f"""
        SELECT u.id, u.email FROM {User._meta.db_table} u
        WHERE NOT EXISTS (
            SELECT 1 FROM {UserRole._meta.db_table} ur
            JOIN {Role._meta.db_table} r ON r.id = ur.role_id
            WHERE ur.user_id = u.id
              AND r.name = CASE WHEN u.is_superuser THEN %(admin)s ELSE %(user)s END
        )
        """,  # noqa: S608
        {"admin": SUPERUSER_ROLE, "user": DEFAULT_USER_ROLE},
    )
    return [
        Violation("default_role", f"user {uid} ({email}) lacks their default role")
        for uid, email in rows
    ]


def cache_disagreements() -> list[Violation]:
    violations = []
    ids = list(User.objects.order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(ids), BATCH):
        for wrong in permission_cache_disagreements(user_ids=ids[start : start + BATCH]):
            if wrong.missing:
                detail = f"user {wrong.user_id} has no cache row"
            else:
                detail = (
                    f"user {wrong.user_id}: cache {wrong.old_permissions} / {wrong.old_roles}"
                    f" until {wrong.old_valid_until}, truth {wrong.permissions} / {wrong.roles}"
                    f" until {wrong.valid_until}"
                )
            violations.append(Violation("permission_cache", detail))
    return violations


def users_without_created_event() -> list[Violation]:
    rows = _rows(
        f"""
        SELECT u.id FROM {User._meta.db_table} u
        WHERE NOT EXISTS (
            SELECT 1 FROM {AuditLog._meta.db_table} a
            WHERE a.user_id = u.id AND a.event_type IN ('user.created', 'user.imported')
        )
        """  # noqa: S608
    )
    return [
        Violation("audit", f"user {uid} has no user.created (or user.imported) audit row")
        for (uid,) in rows
    ]


def orphans() -> list[Violation]:
    users = User._meta.db_table
    rows = _rows(
        f"""
        SELECT 'verification', v.id FROM {Verification._meta.db_table} v
        WHERE (v.user_id IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM {users} u WHERE u.id = v.user_id))
           OR NOT EXISTS (SELECT 1 FROM {users} u WHERE u.id = split_part(v.identifier, ':', 2))
        UNION ALL
        SELECT 'email send', s.id FROM {EmailSend._meta.db_table} s
        WHERE s.user_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {users} u WHERE u.id = s.user_id)
        """  # noqa: S608
    )
    return [
        Violation("orphan", f"{kind} {row_id} points at a missing user") for kind, row_id in rows
    ]


def second_factors() -> list[Violation]:
    """No confirmed TOTP without a secret; no factor or recovery code left of a deleted user."""
    users = User._meta.db_table
    rows = _rows(
        f"""
        SELECT 'TOTP ' || t.id || ' is confirmed but has no secret'
        FROM {TwoFactor._meta.db_table} t
        WHERE t.confirmed_at IS NOT NULL AND coalesce(t.secret, '') = ''
        UNION ALL
        SELECT 'TOTP ' || t.id || ' belongs to a missing user' FROM {TwoFactor._meta.db_table} t
        WHERE NOT EXISTS (SELECT 1 FROM {users} u WHERE u.id = t.user_id)
        UNION ALL
        SELECT 'passkey ' || p.id || ' belongs to a missing user' FROM {Passkey._meta.db_table} p
        WHERE NOT EXISTS (SELECT 1 FROM {users} u WHERE u.id = p.user_id)
        UNION ALL
        SELECT 'recovery code ' || r.id || ' belongs to a missing user'
        FROM {RecoveryCode._meta.db_table} r
        WHERE NOT EXISTS (SELECT 1 FROM {users} u WHERE u.id = r.user_id)
        """  # noqa: S608
    )
    return [Violation("mfa", detail) for (detail,) in rows]


def stuck_sends() -> list[Violation]:
    limit = timezone.now() - timedelta(seconds=settings.SV_EMAIL_SENDING_TIMEOUT)
    stuck = EmailSend.objects.filter(status=EmailSend.Status.SENDING, updated_at__lt=limit)
    return [
        Violation("email", f"send {pk} stuck in sending since {updated:%Y-%m-%d %H:%M:%S}")
        for pk, updated in stuck.values_list("pk", "updated_at")
    ]


def audit_evidence() -> list[Violation]:
    return [Violation("audit_evidence", f"{p.kind}: {p.detail}") for p in audit_verify().problems]


CHECKS = (
    users_without_default_role,
    cache_disagreements,
    users_without_created_event,
    orphans,
    second_factors,
    stuck_sends,
    audit_evidence,
)


def invariants_check() -> list[Violation]:
    """Every violation found, in the order of CHECKS; empty when all holds."""
    return [violation for check in CHECKS for violation in check()]
