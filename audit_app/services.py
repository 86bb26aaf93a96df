"""Writes to the audit log; callers run them inside their own transaction."""

import hashlib
import time
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.db.models import Max, Min

from sv_sdk import metrics
from sv_sdk.net import clean_ip

from .context import UNSET, clean_user_agent, current_context
from .errors import CheckpointDelayed
from .evidence import checkpoint_mac, digest_line, normalise_metadata, row_mac
from .models import AuditCheckpoint, AuditLog
from .selectors import audit_retention_floor

# Keys that must never reach an audit row, whatever the caller passes.
_SECRET_MARKERS = ("password", "token", "secret", "hash")

_TABLE = AuditLog._meta.db_table
# The session setting that, for the table owner only, lets DELETE and TRUNCATE
# through the append-only trigger (migration 0002).
RETENTION_SETTING = "sv.audit_retention"


def _secret_keys(value, path: str = "") -> list[str]:
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            name = f"{path}{key}"
            if any(marker in str(key).lower() for marker in _SECRET_MARKERS):
                found.append(name)
            found += _secret_keys(item, f"{name}.")
    elif isinstance(value, list):
        for item in value:
            found += _secret_keys(item, path)
    return found


_IDS_SQL = "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)"


def audit_ids_statement(count: int) -> tuple[str, list]:
    """The statement that takes `count` ids for new rows (see audit_seal)."""
    return _IDS_SQL, [_TABLE, count]


def audit_seal(rows: list[AuditLog], ids: list[int]) -> None:
    """Give unsaved rows their ids and MACs, ready to insert.

    The id is taken first because the MAC covers it. Taking it in the same
    transaction as the insert is what lets checkpoints know when every id up
    to a point has settled.
    """
    for row, row_id in zip(rows, sorted(ids), strict=True):
        row.id = row_id
        row.row_mac = row_mac(row)
    metrics.count_audit_events(rows)


def _id_or_none(value) -> str | None:
    return None if value is None else str(value)


def audit_event(
    *,
    event_type: str,
    actor_id=UNSET,
    user_id: str | None = None,
    target_type: str = "",
    target_id: str = "",
    metadata: dict | None = None,
    ip_address=UNSET,
    user_agent=UNSET,
    request_id=UNSET,
) -> AuditLog:
    """One event, not yet written: no id, no MAC (see audit_record for the arguments)."""
    metadata = normalise_metadata(metadata or {})
    leaked = _secret_keys(metadata)
    if leaked:
        raise ValueError(f"audit metadata must not carry secrets: {sorted(leaked)}")
    context = current_context()

    def given_or_context(name: str, value):
        return context.value(name) if value is UNSET else value

    return AuditLog(
        event_type=event_type,
        actor_id=_id_or_none(given_or_context("actor_id", actor_id)),
        user_id=_id_or_none(user_id),
        target_type=target_type,
        target_id="" if target_id is None else str(target_id),
        metadata=metadata,
        ip_address=clean_ip(given_or_context("ip_address", ip_address)),
        user_agent=clean_user_agent(given_or_context("user_agent", user_agent)),
        request_id=(given_or_context("request_id", request_id) or "")[:100],
    )


def audit_record(**event) -> AuditLog:
    """Append one event to the audit log (the arguments of audit_event).

    actor_id, ip_address, user_agent and request_id default to the current
    request's (or `audit_context`'s); a value passed here wins, and
    `actor_id=None` means the system acted.
    """
    return audit_write(audit_event(**event))


def audit_write(row: AuditLog) -> AuditLog:
    """Write an event built by audit_event: take its id, seal it, insert it."""
    # No savepoint: an audit failure fails the caller.
    with transaction.atomic(savepoint=False):
        with connection.cursor() as cursor:
            cursor.execute(*audit_ids_statement(1))
            audit_seal([row], [row_id for (row_id,) in cursor.fetchall()])
        row.save(force_insert=True)
    return row


# Checkpoints ------------------------------------------------------------------

_ACTIVE_SQL = """
SELECT pid, xact_start FROM pg_stat_activity
WHERE datname = current_database() AND backend_type = 'client backend'
  AND pid <> pg_backend_pid() AND xact_start IS NOT NULL
"""


def _settled_horizon(wait_seconds: float) -> int:
    """The highest audit id below which no open transaction can still add a row."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_sequence_last_value(pg_get_serial_sequence(%s, 'id')::regclass)",
            [_TABLE],
        )
        horizon = cursor.fetchone()[0] or 0
        # Every id up to the horizon was handed out before this point, so its
        # transaction has ended or is among those open now: wait for them.
        # pg_stat_activity is read once per transaction unless the snapshot is cleared.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(_ACTIVE_SQL)
        pending = set(cursor.fetchall())
        deadline = time.monotonic() + wait_seconds
        while pending:
            if time.monotonic() > deadline:
                raise CheckpointDelayed(
                    f"{len(pending)} transaction(s) open since before the checkpoint"
                    f" did not end within {wait_seconds:g} s."
                )
            time.sleep(0.05)
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(_ACTIVE_SQL)
            pending &= set(cursor.fetchall())
    return horizon


def _seal(after_id: int, last_id: int) -> tuple[int, str, list[list[int]]]:
    """Count, digest and missing-id runs of the rows in (after_id, last_id]."""
    digest = hashlib.sha256()
    count = 0
    missing: list[list[int]] = []
    expected = after_id + 1
    rows = (
        AuditLog.objects.filter(id__gt=after_id, id__lte=last_id)
        .order_by("id")
        .values_list("id", "row_mac")
        .iterator(chunk_size=5000)
    )
    for row_id, mac in rows:
        if row_id > expected:
            missing.append([expected, row_id - 1])
        digest.update(digest_line(row_id, mac))
        count += 1
        expected = row_id + 1
    if expected <= last_id:
        missing.append([expected, last_id])
    return count, digest.hexdigest(), missing


def audit_checkpoint_create(*, wait_seconds: float = 60.0) -> AuditCheckpoint | None:
    """Seal the audit rows written since the last checkpoint; None if there are none.

    Raises CheckpointDelayed when transactions that may still add rows stay
    open longer than `wait_seconds`.
    """
    horizon = _settled_horizon(wait_seconds)
    with transaction.atomic():
        with connection.cursor() as cursor:
            # One checkpoint writer at a time: each chains onto the previous one.
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext('sv_sdk.audit_checkpoint'))")
        previous = AuditCheckpoint.objects.order_by("-last_id").first()
        after_id = previous.last_id if previous else 0
        if horizon <= after_id:
            return None
        count, digest, missing = _seal(after_id, horizon)
        checkpoint = AuditCheckpoint(
            after_id=after_id,
            last_id=horizon,
            row_count=count,
            missing_ids=missing,
            digest=digest,
            previous_mac=previous.mac if previous else "",
        )
        checkpoint.mac = checkpoint_mac(checkpoint)
        checkpoint.save(force_insert=True)
    return checkpoint


# Retention --------------------------------------------------------------------


@dataclass(frozen=True)
class PruneResult:
    through_id: int
    deleted: int


def audit_prune(*, before: datetime) -> PruneResult:
    """Delete the sealed audit rows older than `before`, whole checkpoints at a time.

    Only the table owner can: the append-only trigger lets DELETE through for
    the owner's transaction with sv.audit_retention on, which this sets. The
    prune itself is recorded (`audit.pruned`), and audit_verify takes that
    row's `through_id` as the start of the trail.
    """
    # Durable: the retention door must not stay open for the rest of a caller's transaction.
    with transaction.atomic(durable=True):
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config(%s, 'on', true)", [RETENTION_SETTING])
        floor = audit_retention_floor()
        first_kept = AuditLog.objects.filter(occurred_at__gte=before).aggregate(first=Min("id"))[
            "first"
        ]
        sealed = AuditCheckpoint.objects.all()
        if first_kept is not None:
            sealed = sealed.filter(last_id__lt=first_kept)
        through_id = sealed.aggregate(last=Max("last_id"))["last"]
        if through_id is None or through_id <= floor:
            return PruneResult(through_id=floor, deleted=0)
        deleted, _ = AuditLog.objects.filter(id__gt=floor, id__lte=through_id).delete()
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config(%s, 'off', true)", [RETENTION_SETTING])
        audit_record(
            event_type="audit.pruned",
            target_type="audit_log",
            target_id=str(through_id),
            metadata={"before": before.isoformat(), "through_id": through_id, "deleted": deleted},
        )
    return PruneResult(through_id=through_id, deleted=deleted)
