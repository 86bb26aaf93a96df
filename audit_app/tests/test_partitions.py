"""The audit log partitioned by month: the job, where rows land, retention by archive."""

# The statements name the model's own tables; values go in as parameters.
# ruff: noqa: S608

import hashlib
import io
import json
import tarfile
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection
from django.utils import timezone
from procrastinate.contrib.django import app

from audit_app.archive import MANIFEST, ROWS, verify_archive
from audit_app.models import AuditLog
from audit_app.partitions import (
    AUDIT_LOGS,
    MONTHS_AHEAD,
    default_partition_name,
    month_start,
    months_from,
    partition_name,
    partition_table,
    unpartition_table,
)
from audit_app.selectors import audit_partition_months, audit_verify
from audit_app.services import (
    audit_checkpoint_create,
    audit_month_archive,
    audit_partitions_ensure,
    audit_record,
)

from .conftest import raw, sealed_rows_at, tamper

pytestmark = pytest.mark.django_db

NOW = timezone.now()
THIS_MONTH = month_start(NOW)
# Two and three months back: old enough to archive, with partitions made by back-filling.
OLDER, OLD = months_from(THIS_MONTH - timedelta(days=95), 1)


def at(month, day=10) -> datetime:
    return datetime(month.year, month.month, day, 12, tzinfo=UTC)


def partition_of(row_id: int) -> str:
    (name,) = raw(f"SELECT tableoid::regclass::text FROM {AUDIT_LOGS} WHERE id = %s", [row_id])[0]
    return name


def unquoted(name: str) -> str:
    return name.replace('"', "")


@pytest.fixture
def old_months():
    audit_partitions_ensure(since=at(OLDER))
    rows = sealed_rows_at(at(OLDER), 3) + sealed_rows_at(at(OLD), 2)
    audit_checkpoint_create(wait_seconds=5)
    return rows


def test_the_partition_job_creates_the_coming_months_once():
    created = audit_partitions_ensure()
    assert created == []  # the migration made them already
    furthest = partition_name(AUDIT_LOGS, months_from(NOW, MONTHS_AHEAD)[-1])
    raw(f"DROP TABLE {furthest}")

    assert audit_partitions_ensure() == [unquoted(furthest).split(".")[1]]
    assert audit_partitions_ensure() == []
    assert audit_partition_months()[-len(months_from(NOW, MONTHS_AHEAD)) :] == months_from(
        NOW, MONTHS_AHEAD
    )
    out = io.StringIO()
    call_command("audit_partitions", stdout=out, stderr=io.StringIO())
    assert "created" not in out.getvalue()
    crons = {p.task.name: p.cron for p in app.periodic_registry.periodic_tasks.values()}
    assert crons["audit.partitions"] == "23 3 * * *"


def test_rows_land_in_the_partition_of_their_month():
    audit_partitions_ensure(since=at(OLD))
    last_moment = datetime.combine(THIS_MONTH, datetime.min.time(), UTC) - timedelta(microseconds=1)
    before, first = sealed_rows_at(last_moment, 1) + sealed_rows_at(
        datetime.combine(THIS_MONTH, datetime.min.time(), UTC), 1
    )
    now = audit_record(event_type="user.updated")

    assert partition_of(before.id) == unquoted(partition_name(AUDIT_LOGS, month_start(last_moment)))
    assert partition_of(first.id) == unquoted(partition_name(AUDIT_LOGS, THIS_MONTH))
    assert partition_of(now.id) == unquoted(partition_name(AUDIT_LOGS, THIS_MONTH))


def test_a_row_of_a_month_without_partition_waits_in_the_default_one_then_moves():
    far = months_from(NOW, 30)[-1]
    (row,) = sealed_rows_at(at(far), 1)
    assert partition_of(row.id) == unquoted(default_partition_name(AUDIT_LOGS))

    out = io.StringIO()
    call_command("audit_partitions", "--ahead", "30", stdout=io.StringIO(), stderr=out)
    assert out.getvalue() == ""

    assert partition_of(row.id) == unquoted(partition_name(AUDIT_LOGS, far))
    assert AuditLog.objects.get(id=row.id).row_mac == row.row_mac
    assert audit_verify().problems == []


@pytest.mark.parametrize(
    "statement", ["UPDATE {} SET event_type = 'x'", "DELETE FROM {}", "TRUNCATE {}"]
)
def test_every_partition_refuses_update_delete_and_truncate(statement):
    audit_record(event_type="user.updated")
    far = months_from(NOW, 30)[-1]
    audit_partitions_ensure(ahead=30)
    for partition in (
        partition_name(AUDIT_LOGS, THIS_MONTH),
        partition_name(AUDIT_LOGS, far),  # made by the job, not the migration
        default_partition_name(AUDIT_LOGS),
    ):
        with pytest.raises(DatabaseError, match="append-only") as refused:
            raw(statement.format(partition))
        assert "audit_archive" in refused.value.__cause__.diag.message_hint
    assert AuditLog.objects.filter(event_type="user.updated").exists()


def test_audit_verify_finds_tampering_in_any_partition(old_months):
    older, old = old_months[0], old_months[3]
    tamper(f"UPDATE {AUDIT_LOGS} SET event_type = 'user.created' WHERE id = %s", [older.id])
    partition = partition_name(AUDIT_LOGS, OLD)
    raw(f"ALTER TABLE {partition} DISABLE TRIGGER audit_logs_append_only")
    raw(f"DELETE FROM {partition} WHERE id = %s", [old.id])

    problems = {(p.row_id, p.kind) for p in audit_verify().problems}

    assert {(older.id, "altered"), (old.id, "deleted")} <= problems


def archive(month, tmp_path):
    return audit_month_archive(month=month, directory=tmp_path)


def test_retention_archives_a_month_and_removes_it_from_the_live_table(
    old_months, tmp_path, django_db_blocker
):
    older_ids = {row.id for row in old_months[:3]}

    result = archive(OLDER, tmp_path)

    assert result.rows == 3 and result.path.exists()
    assert not AuditLog.objects.filter(id__in=older_ids).exists()
    assert OLDER not in audit_partition_months()
    record = AuditLog.objects.get(event_type="audit.archived")
    assert record.metadata["sha256"] == result.sha256
    assert record.metadata["month"] == f"{OLDER:%Y-%m}"
    # The live trail still verifies: the archived rows are accounted for, not deleted.
    assert audit_verify().problems == []
    with django_db_blocker.block():  # offline: any query would fail the test
        check = verify_archive(result.path)
        out = io.StringIO()
        call_command("audit_verify", "--archive", str(result.path), stdout=out)
    assert check.problems == [] and check.rows == 3
    assert out.getvalue().startswith(f"archive intact: {OLDER:%Y-%m}, 3 rows")


def test_after_an_archive_a_row_deleted_from_another_month_is_still_caught(old_months, tmp_path):
    archive(OLDER, tmp_path)
    partition = partition_name(AUDIT_LOGS, OLD)
    raw(f"ALTER TABLE {partition} DISABLE TRIGGER audit_logs_append_only")
    raw(f"DELETE FROM {partition} WHERE id = %s", [old_months[4].id])

    assert audit_verify().first_bad_row.row_id == old_months[4].id


def test_a_month_whose_rows_are_not_sealed_yet_is_not_archived(tmp_path):
    audit_partitions_ensure(since=at(OLD))
    rows = sealed_rows_at(at(OLD), 2)

    with pytest.raises(CommandError, match="not sealed by a checkpoint yet"):
        call_command(
            "audit_archive",
            "--before",
            THIS_MONTH.isoformat(),
            "--output-dir",
            str(tmp_path),
            stdout=io.StringIO(),
        )

    assert AuditLog.objects.filter(id__in=[r.id for r in rows]).count() == 2
    assert OLD in audit_partition_months()
    # Earlier, empty months may have been archived; this one left nothing behind.
    assert not list(tmp_path.glob(f"audit_logs_{OLD:%Y-%m}*"))


def test_the_archive_command_reports_each_month(old_months, tmp_path):
    out = io.StringIO()
    call_command(
        "audit_archive", "--before", OLD.isoformat(), "--output-dir", str(tmp_path), stdout=out
    )
    assert f"archived {OLDER:%Y-%m}: 3 rows to " in out.getvalue()
    with pytest.raises(CommandError, match="not a directory"):
        call_command("audit_archive", "--before", OLD.isoformat(), "--output-dir", "/nonexistent")


def _rewrite(path, change):
    """The archive at `path` with its members passed through `change(name, data)`."""
    with tarfile.open(path, "r:gz") as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    members = {name: change(name, data) for name, data in members.items()}
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _alter_row(name, data):
    if name != ROWS:
        return data
    lines = data.splitlines(keepends=True)
    row = json.loads(lines[1])
    row["actor_id"] = "someone-else"
    lines[1] = json.dumps(row).encode() + b"\n"
    return b"".join(lines)


@pytest.mark.parametrize("kind", ["row altered", "row removed, manifest rewritten", "manifest"])
def test_offline_verification_detects_a_tampered_archive(old_months, tmp_path, kind):
    path = archive(OLDER, tmp_path).path
    if kind == "row altered":
        _rewrite(path, _alter_row)
    elif kind == "manifest":
        _rewrite(
            path,
            lambda name, data: (
                data.replace(b'"rows": 3', b'"rows": 2') if name == MANIFEST else data
            ),
        )
    else:
        # Whoever removes a row and rewrites the manifest's hash and count to match
        # still lacks the key for the manifest's MAC.
        with tarfile.open(path, "r:gz") as tar:
            rows = tar.extractfile(ROWS).read().splitlines(keepends=True)[1:]

        def change(name, data):
            if name == ROWS:
                return b"".join(rows)
            if name == MANIFEST:
                manifest = json.loads(data)
                manifest["rows"] = 2
                manifest["files"][ROWS]["sha256"] = hashlib.sha256(b"".join(rows)).hexdigest()
                return json.dumps(manifest).encode()
            return data

        _rewrite(path, change)

    assert verify_archive(path).problems
    with pytest.raises(CommandError, match="archive NOT intact"):
        call_command("audit_verify", "--archive", str(path), stderr=io.StringIO())


def test_offline_verification_of_a_file_that_is_no_archive_is_a_command_error(tmp_path):
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not an archive")
    with pytest.raises(CommandError, match="not a readable audit archive"):
        call_command("audit_verify", "--archive", str(junk))
    with pytest.raises(CommandError, match="not a readable audit archive"):
        call_command("audit_verify", "--archive", str(tmp_path / "missing.tar.gz"))


def _content_digest() -> str:
    (digest,) = raw(f"SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM {AUDIT_LOGS} t")[0]
    return digest


def test_converting_a_populated_table_keeps_every_row_in_its_month():
    # Back to the layout before migration 0003, then 50,000 rows over six months.
    with connection.cursor() as cursor:
        unpartition_table(cursor, AUDIT_LOGS)
    for back in range(6):
        month = month_start(THIS_MONTH - timedelta(days=31 * back))
        sealed_rows_at(at(month), 50_000 // 6 + (back < 50_000 % 6))
    audit_checkpoint_create(wait_seconds=5)
    before = _content_digest()

    with connection.cursor() as cursor:
        conversion = partition_table(cursor, AUDIT_LOGS)

    assert conversion.rows == AuditLog.objects.count() >= 50_000
    assert _content_digest() == before
    (misplaced,) = raw(
        f"SELECT count(*) FROM {AUDIT_LOGS} t JOIN pg_class c ON c.oid = t.tableoid"
        " WHERE c.relname <> 'audit_logs_y' || to_char(t.occurred_at AT TIME ZONE 'UTC',"
        " 'YYYY\"m\"MM')"
    )[0]
    assert misplaced == 0
    assert audit_verify().problems == []
    latest = audit_record(event_type="user.updated")
    assert latest.id > AuditLog.objects.exclude(id=latest.id).order_by("-id").first().id
    with pytest.raises(DatabaseError, match="append-only"):
        raw(f"DELETE FROM {partition_name(AUDIT_LOGS, THIS_MONTH)}")
