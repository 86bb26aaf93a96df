"""Writes to the audit log; callers run them inside their own transaction."""

import hashlib
import re
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from django.db import connection, connections, transaction
from django.db.models import Max, Min, Model
from django.utils import timezone

from sv_sdk import metrics
from sv_sdk.db.batch import Batch
from sv_sdk.net import clean_ip

from .archive import ROW_FIELDS, write_archive
from .context import UNSET, clean_user_agent, current_context
from .errors import ArchiveRefused, CheckpointDelayed
from .evidence import checkpoint_mac, digest_line, normalise_metadata, row_mac
from .models import AuditCheckpoint, AuditLog
from .partitions import (
    MONTHS_AHEAD,
    add_month_partition,
    month_end,
    month_start,
    months_between,
    months_from,
    partition_name,
)

# Keys that must never reach an audit row, whatever the caller passes.
_SECRET_MARKERS = ("password", "token", "secret", "hash")

_TABLE = AuditLog._meta.db_table


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


def _insert_sealed(batch: Batch, rows: list[AuditLog]) -> None:
    """Give unsaved rows their ids and MACs, and queue their INSERT into `batch`.

    As many ids as there are rows, taken first (one query) because the MAC
    covers the id; taking them in the same transaction as the insert is what
    lets checkpoints know when every id up to a point has settled.
    """
    with connections[batch.using].cursor() as cursor:
        cursor.execute(_IDS_SQL, [_TABLE, len(rows)])
        ids = sorted(row_id for (row_id,) in cursor.fetchall())
    for row, row_id in zip(rows, ids, strict=True):
        row.id = row_id
        row.row_mac = row_mac(row)
    metrics.count_audit_events(rows)
    batch.insert(*rows)


def _id_or_none(value) -> str | None:
    return None if value is None else str(value)


def target_type_of(obj: Model) -> str:
    """The audit name of a model instance: its class name in snake_case (EmailSend: email_send)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(obj).__name__).lower()


def _one_of(name: str, obj, given_id, default):
    # An object, or its id when no object exists (say, a user already deleted); not both.
    if obj is not default and given_id is not default:
        raise TypeError(f"pass {name}= or {name}_id=, not both")
    if obj is default:
        return given_id
    return None if obj is None else obj.pk


def audit_record(
    *,
    event_type: str,
    actor: Model | None = UNSET,
    actor_id: str | None = UNSET,
    user: Model | None = None,
    user_id: str | None = None,
    target: Model | None = None,
    target_type: str = "",
    target_id: str = "",
    metadata: dict | None = None,
    ip_address=UNSET,
    user_agent=UNSET,
    request_id=UNSET,
    batch: Batch | None = None,
) -> AuditLog:
    """Append one event to the audit log; with `batch`, as one of that batch's writes.

    `actor` is who acted (a user, or None: the system), `user` the user the
    event concerns, `target` what was acted on; each takes the object, or
    `actor_id=`, `user_id=`, `target_type=` and `target_id=` where no object
    exists (a user already deleted). actor, ip_address, user_agent and
    request_id default to the current request's (or `audit_context`'s); a
    value passed here wins.

    With `batch`, the row is written when the batch runs, after its other
    statements, its id taken then (sv_sdk.db.batch.Batch.gather).
    """
    metadata = normalise_metadata(metadata or {})
    leaked = _secret_keys(metadata)
    if leaked:
        raise ValueError(f"audit metadata must not carry secrets: {sorted(leaked)}")
    context = current_context()

    def given_or_context(name: str, value):
        return context.value(name) if value is UNSET else value

    if target is not None:
        if target_type or target_id:
            raise TypeError("pass target= or target_type= and target_id=, not both")
        target_type, target_id = target_type_of(target), target.pk
    actor_id = given_or_context("actor_id", _one_of("actor", actor, actor_id, UNSET))
    row = AuditLog(
        event_type=event_type,
        actor_id=_id_or_none(actor_id),
        user_id=_id_or_none(_one_of("user", user, user_id, None)),
        target_type=target_type,
        target_id="" if target_id is None else str(target_id),
        metadata=metadata,
        ip_address=clean_ip(given_or_context("ip_address", ip_address)),
        user_agent=clean_user_agent(given_or_context("user_agent", user_agent)),
        request_id=(given_or_context("request_id", request_id) or "")[:100],
    )
    own = batch is None
    if own:
        batch = Batch()
    batch.gather(_insert_sealed, row)
    if own:
        # No savepoint: an audit failure fails the caller.
        batch.run()
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


# Partitions -------------------------------------------------------------------


def audit_partitions_ensure(
    *, ahead: int = MONTHS_AHEAD, since: datetime | None = None
) -> list[str]:
    """Create the audit log's monthly partitions up to `ahead` months from now; the new names.

    Idempotent: existing partitions are left alone. `since` also creates the months
    from then on (back-filling). Gives up on a lock it cannot get within a few seconds
    rather than queue every audit insert behind it (a long export holds the table);
    the next run tries again.
    """
    now = timezone.now()
    months = months_between(since, now) if since is not None else []
    months += [m for m in months_from(now, ahead) if m not in months]
    created = []
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL lock_timeout = '5s'")
        for month in months:
            name = add_month_partition(cursor, _TABLE, month)
            if name:
                created.append(name)
    return created


# Retention --------------------------------------------------------------------


@dataclass(frozen=True)
class ArchiveResult:
    month: date
    path: Path
    rows: int
    sha256: str


def audit_month_archive(*, month: date, directory: Path) -> ArchiveResult:
    """Detach one month's partition, export it to `directory`, drop it, and record it.

    One transaction: if the export fails, the partition stays attached. Only the
    table owner can (DETACH and DROP are the owner's), and only for a month whose
    rows a checkpoint has sealed, so the archive carries the checkpoints that
    vouch for it. Recorded as `audit.archived`, which audit_verify reads to tell
    archived rows from deleted ones.
    """
    month = month_start(month)
    partition = partition_name(_TABLE, month)
    final = directory / f"audit_logs_{month:%Y-%m}.tar.gz"
    if final.exists():
        raise ArchiveRefused(f"{final} exists already; move it away first.")
    partial = final.with_name(final.name + ".partial")
    partial.unlink(missing_ok=True)
    lower, upper = datetime(month.year, month.month, 1, tzinfo=UTC), month_end(month)
    try:
        with transaction.atomic(durable=True), connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '10s'")
            cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [partition])
            if not cursor.fetchone()[0]:
                raise ArchiveRefused(f"there is no partition for {month:%Y-%m}.")
            # No more rows for this month from here on: whatever is in it is what we export.
            cursor.execute(f"LOCK TABLE {partition} IN SHARE MODE")
            in_month = AuditLog.objects.filter(occurred_at__gte=lower, occurred_at__lt=upper)
            span = in_month.aggregate(first=Min("id"), last=Max("id"))
            sealed = AuditCheckpoint.objects.aggregate(last=Max("last_id"))["last"] or 0
            if span["last"] is not None and span["last"] > sealed:
                raise ArchiveRefused(
                    f"rows of {month:%Y-%m} up to id {span['last']} are not sealed by a"
                    " checkpoint yet; run audit_checkpoint first."
                )
            checkpoints, seals = [], []
            if span["first"] is not None:
                checkpoints = list(
                    AuditCheckpoint.objects.filter(
                        last_id__gte=span["first"], after_id__lt=span["last"]
                    ).order_by("after_id")
                )
                # The other months' rows those checkpoints sealed, still in the table.
                seals = list(
                    AuditLog.objects.filter(
                        id__gt=checkpoints[0].after_id, id__lte=checkpoints[-1].last_id
                    )
                    .exclude(occurred_at__gte=lower, occurred_at__lt=upper)
                    .order_by("id")
                    .values_list("id", "row_mac")
                )
            kept = [row_id for row_id, _ in seals if span["first"] <= row_id <= span["last"]]
            written = write_archive(
                partial,
                month=month,
                partition=partition,
                rows=in_month.order_by("id").values(*ROW_FIELDS).iterator(chunk_size=5000),
                checkpoints=checkpoints,
                seals=seals,
                kept_ids=kept,
            )
            cursor.execute(f"ALTER TABLE {_TABLE} DETACH PARTITION {partition}")
            cursor.execute(f"DROP TABLE {partition}")
            manifest = written.manifest
            audit_record(
                event_type="audit.archived",
                target_type="audit_log",
                target_id=f"{month:%Y-%m}",
                metadata={
                    "month": manifest["month"],
                    "rows": manifest["rows"],
                    "first_id": manifest["first_id"],
                    "last_id": manifest["last_id"],
                    "kept_ids": kept,
                    "file": final.name,
                    "sha256": written.sha256,
                    "manifest_mac": manifest["mac"],
                },
            )
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(final)
    return ArchiveResult(month=month, path=final, rows=manifest["rows"], sha256=written.sha256)
