"""Reads from the audit log: lists, exports and the integrity check."""

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime

from django.db import connection
from django.db.models import QuerySet

from .evidence import checkpoint_is_authentic, digest_line, row_is_authentic
from .models import AuditCheckpoint, AuditLog
from .partitions import default_partition_name, month_of_partition


def audit_log_list(
    *,
    event_type: str | None = None,
    actor_id: str | None = None,
    user_id: str | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[AuditLog]:
    """Audit rows matching every filter given; `since` inclusive, `until` exclusive."""
    rows = AuditLog.objects.all()
    exact = {
        "event_type": event_type,
        "actor_id": actor_id,
        "user_id": user_id,
        "target_type": target_type,
        "target_id": target_id,
    }
    rows = rows.filter(**{name: value for name, value in exact.items() if value is not None})
    if since is not None:
        rows = rows.filter(occurred_at__gte=since)
    if until is not None:
        rows = rows.filter(occurred_at__lt=until)
    return rows


_PARTITIONS_SQL = """
SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname)
FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE i.inhparent = %s::regclass
"""


def audit_partition_months() -> list[date]:
    """The months the audit log has a partition for, oldest first."""
    with connection.cursor() as cursor:
        cursor.execute(_PARTITIONS_SQL, [AuditLog._meta.db_table])
        months = (month_of_partition(name) for (name,) in cursor.fetchall())
    return sorted(month for month in months if month is not None)


def audit_default_partition_rows() -> int:
    """Rows waiting in the default partition: their month had no partition when written."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {default_partition_name(AuditLog._meta.db_table)}")  # noqa: S608
        return cursor.fetchone()[0]


@dataclass(frozen=True)
class ArchivedSpan:
    first_id: int
    last_id: int
    kept_ids: frozenset[int]

    def holds(self, row_id: int) -> bool:
        return self.first_id <= row_id <= self.last_id and row_id not in self.kept_ids


def audit_archived_spans() -> list[ArchivedSpan]:
    """The id spans recorded (authentically) as archived months, with the ids they kept."""
    spans = []
    for row in AuditLog.objects.filter(event_type="audit.archived").iterator(chunk_size=100):
        # A forged archive record must not excuse missing rows.
        if row_is_authentic(row) and row.metadata.get("first_id") is not None:
            spans.append(
                ArchivedSpan(
                    first_id=int(row.metadata["first_id"]),
                    last_id=int(row.metadata["last_id"]),
                    kept_ids=frozenset(row.metadata.get("kept_ids", [])),
                )
            )
    return spans


def audit_retention_floor() -> int:
    """The id up to which a recorded row-deleting retention run (before partitions) went."""
    pruned = AuditLog.objects.filter(event_type="audit.pruned").order_by("-id")
    for row in pruned.iterator(chunk_size=20):
        # A forged prune record must not excuse missing rows.
        if row_is_authentic(row):
            return int(row.metadata.get("through_id", 0))
    return 0


@dataclass(frozen=True)
class Problem:
    kind: str  # altered, deleted, inserted, checkpoint
    detail: str
    row_id: int | None = None
    checkpoint_id: int | None = None


@dataclass
class Verification:
    rows: int = 0
    checkpoints: int = 0
    unsealed_rows: int = 0  # after the last checkpoint: deletions there go unseen
    floor: int = 0
    archived_months: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def first_bad_row(self) -> Problem | None:
        return next((p for p in self.problems if p.row_id is not None), None)


def _expected_ids(checkpoints: list[AuditCheckpoint], floor: int) -> Iterator[tuple[int, int]]:
    """(row id, checkpoint id) of every row the checkpoints say exists, in id order."""
    for checkpoint in checkpoints:
        gaps = iter(checkpoint.missing_ids)
        gap = next(gaps, None)
        row_id = max(checkpoint.after_id, floor) + 1
        while row_id <= checkpoint.last_id:
            while gap is not None and gap[1] < row_id:
                gap = next(gaps, None)
            if gap is not None and gap[0] <= row_id:
                row_id = gap[1] + 1
                continue
            yield row_id, checkpoint.id
            row_id += 1


def _checked_chain(verification: Verification) -> list[AuditCheckpoint]:
    checkpoints = list(AuditCheckpoint.objects.order_by("after_id", "id"))
    expected_after, previous_mac = 0, ""
    for checkpoint in checkpoints:
        problem = None
        if not checkpoint_is_authentic(checkpoint):
            problem = "does not match its MAC: altered, or inserted out of band"
        elif checkpoint.after_id != expected_after or checkpoint.previous_mac != previous_mac:
            problem = f"does not follow the one sealing up to row {expected_after}: one is missing"
        if problem:
            verification.problems.append(
                Problem("checkpoint", f"checkpoint {checkpoint.id} {problem}", None, checkpoint.id)
            )
        expected_after, previous_mac = checkpoint.last_id, checkpoint.mac
    verification.checkpoints = len(checkpoints)
    return checkpoints


def audit_verify(*, progress: Callable[[int], None] | None = None) -> Verification:
    """Check every row's MAC and every checkpoint; problems come in id order.

    A row whose MAC does not match was altered or inserted by someone without
    the key; an id a checkpoint sealed but the table lacks was deleted; a row
    in a sealed range that the checkpoint did not count was inserted out of band.
    """
    verification = Verification(floor=audit_retention_floor())
    archived = audit_archived_spans()
    verification.archived_months = len(archived)
    checkpoints = [c for c in _checked_chain(verification) if c.last_id > verification.floor]
    sealed_until = max((c.last_id for c in checkpoints), default=verification.floor)
    by_id = {c.id: c for c in checkpoints}
    digests = {c.id: hashlib.sha256() for c in checkpoints}
    # Checkpoints whose digest is not rechecked: a row-level problem already reported,
    # or some of their rows archived.
    flagged: set[int] = set()
    expected = _expected_ids(checkpoints, verification.floor)
    next_expected = next(expected, None)
    problems = verification.problems

    def missing_before(row_id: int | None) -> None:
        nonlocal next_expected
        while next_expected is not None and (row_id is None or next_expected[0] < row_id):
            gone, checkpoint_id = next_expected
            next_expected = next(expected, None)
            # Its checkpoint's digest cannot be recomputed either way.
            flagged.add(checkpoint_id)
            if any(span.holds(gone) for span in archived):
                continue
            problems.append(
                Problem(
                    "deleted",
                    f"row {gone} was deleted (checkpoint {checkpoint_id} sealed it)",
                    gone,
                    checkpoint_id,
                )
            )

    rows = AuditLog.objects.filter(id__gt=verification.floor).order_by("id")
    covering = 0  # index of the first checkpoint that may cover the current row
    for row in rows.iterator(chunk_size=5000):
        verification.rows += 1
        if progress and verification.rows % 10_000 == 0:
            progress(verification.rows)
        missing_before(row.id)
        while covering < len(checkpoints) and checkpoints[covering].last_id < row.id:
            covering += 1
        in_checkpoint = None
        if next_expected is not None and next_expected[0] == row.id:
            in_checkpoint = next_expected[1]
            next_expected = next(expected, None)
            digests[in_checkpoint].update(digest_line(row.id, row.row_mac))
        elif covering < len(checkpoints) and checkpoints[covering].after_id < row.id:
            problems.append(
                Problem("inserted", f"row {row.id} was inserted out of band (sealed range)", row.id)
            )
            flagged.add(checkpoints[covering].id)
            continue
        elif row.id > sealed_until:
            verification.unsealed_rows += 1
        if not row_is_authentic(row):
            problems.append(
                Problem(
                    "altered",
                    f"row {row.id} does not match its MAC: altered, or inserted out of band",
                    row.id,
                    in_checkpoint,
                )
            )
            if in_checkpoint is not None:
                flagged.add(in_checkpoint)
    missing_before(None)
    for checkpoint_id, digest in digests.items():
        if checkpoint_id not in flagged and digest.hexdigest() != by_id[checkpoint_id].digest:
            problems.append(
                Problem(
                    "checkpoint",
                    f"the rows of checkpoint {checkpoint_id} differ from what it sealed",
                    None,
                    checkpoint_id,
                )
            )
    problems.sort(key=lambda p: (p.row_id is None, p.row_id or 0))
    return verification


def audit_export_rows(
    *, since: datetime | None = None, until: datetime | None = None
) -> QuerySet[AuditLog]:
    """Rows in [since, until), oldest first, for streaming."""
    return audit_log_list(since=since, until=until).order_by("id")
