"""Rate limits and sign-in lockout, counted in auth.rate_limits so every worker shares them."""

import math
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from audit_app.services import audit_record
from sv_sdk import metrics
from sv_sdk.errors import ValidationFailed

from .addresses import email_key
from .errors import RateLimited
from .models import RateLimit, User

_TABLE = RateLimit._meta.db_table

# One statement: count this request in the current fixed window, atomically.
_HIT_SQL = f"""
INSERT INTO {_TABLE} AS rl (key, window_start, count)
VALUES (%(key)s, to_timestamp(floor(extract(epoch FROM now()) / %(window)s) * %(window)s), 1)
ON CONFLICT (key) DO UPDATE SET
    count = CASE WHEN rl.window_start = EXCLUDED.window_start THEN rl.count + 1 ELSE 1 END,
    window_start = EXCLUDED.window_start
RETURNING count, extract(epoch FROM window_start + make_interval(secs => %(window)s) - now())
"""  # noqa: S608


def rate_limit_hit(*, scope: str, subject: str) -> None:
    """Count a request of `scope` by `subject` (an IP, an email); past the limit, raise."""
    if not settings.SV_RATE_LIMITS_ENABLED:
        return
    limit, window = settings.SV_RATE_LIMITS[scope]
    with connection.cursor() as cursor:
        cursor.execute(_HIT_SQL, {"key": f"{scope}:{subject}", "window": window})
        count, remaining = cursor.fetchone()
    if count > limit:
        metrics.RATE_LIMIT_REFUSALS.labels(scope=scope).inc()
        raise RateLimited(retry_after=math.ceil(remaining))


def _lockout_key(*, ip: str | None, email: str, user: User | None) -> str:
    # Scoped to the client's IP: failures from an attacker's address lock the
    # attacker out, never the account's owner signing in from elsewhere. An
    # existing account is counted by its id, so no spelling of its address
    # (letter case, fullwidth letters) starts a count of its own.
    return f"lockout:{ip or 'unknown'}:{_lockout_subject(email=email, user=user)}"


def _lockout_subject(*, email: str, user: User | None) -> str:
    if user is not None:
        return f"user:{user.pk}"
    try:
        return f"email:{email_key(email)}"
    except ValidationFailed:
        return f"email:{email.strip().lower()[:254]}"


def lockout_check(*, ip: str | None, email: str, user: User | None) -> None:
    """Raise RateLimited while sign-ins of this account (or unknown email) from this IP are
    locked."""
    row = RateLimit.objects.filter(key=_lockout_key(ip=ip, email=email, user=user)).first()
    now = timezone.now()
    if row and row.blocked_until and row.blocked_until > now:
        metrics.RATE_LIMIT_REFUSALS.labels(scope="lockout").inc()
        raise RateLimited(
            retry_after=math.ceil((row.blocked_until - now).total_seconds()),
            detail="Too many failed sign-ins; try again later.",
        )


def lockout_record_failure(*, ip: str | None, email: str, user: User | None) -> None:
    """Count a failed sign-in; past the threshold, lock with a growing, capped wait."""
    key = _lockout_key(ip=ip, email=email, user=user)
    user_id = user.pk if user is not None else None
    now = timezone.now()
    with transaction.atomic():
        row, _ = RateLimit.objects.select_for_update().get_or_create(
            key=key, defaults={"window_start": now, "count": 0}
        )
        if now - row.window_start > timedelta(seconds=settings.SV_LOCKOUT_RESET_AFTER):
            row.count = 0
        row.window_start = now
        row.count += 1
        over = row.count - settings.SV_LOCKOUT_THRESHOLD
        if over >= 0:
            wait = min(settings.SV_LOCKOUT_BASE_WAIT * 2**over, settings.SV_LOCKOUT_MAX_WAIT)
            row.blocked_until = now + timedelta(seconds=wait)
            audit_record(
                event_type="auth.locked_out",
                user_id=user_id,
                target_type="user" if user_id else "",
                target_id=user_id or "",
                metadata={"email": email, "failures": row.count, "wait_seconds": wait},
                ip_address=ip,
            )
        row.save()


def lockout_clear(*, user: User, ip: str | None = None) -> None:
    """Forget failures of this user (from one IP, or from all after a password reset)."""
    if ip is not None:
        RateLimit.objects.filter(key=_lockout_key(ip=ip, email=user.email, user=user)).delete()
    else:
        RateLimit.objects.filter(
            key__startswith="lockout:", key__endswith=f":user:{user.pk}"
        ).delete()
