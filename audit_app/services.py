"""Writes to the audit log; callers run them inside their own transaction."""

from .models import AuditLog

# Keys that must never reach an audit row, whatever the caller passes.
_SECRET_MARKERS = ("password", "token", "secret", "hash")


def audit_record(
    *,
    event_type: str,
    actor_id: str | None = None,
    user_id: str | None = None,
    target_type: str = "",
    target_id: str = "",
    metadata: dict | None = None,
    ip_address: str | None = None,
    user_agent: str = "",
    request_id: str = "",
) -> AuditLog:
    """Append one event to the audit log."""
    metadata = metadata or {}
    leaked = [key for key in metadata if any(m in key.lower() for m in _SECRET_MARKERS)]
    if leaked:
        raise ValueError(f"audit metadata must not carry secrets: {sorted(leaked)}")
    return AuditLog.objects.create(
        event_type=event_type,
        actor_id=actor_id,
        user_id=user_id,
        target_type=target_type,
        target_id=str(target_id),
        metadata=metadata,
        ip_address=ip_address,
        user_agent=user_agent,
        request_id=request_id,
    )
