"""audit_verify: passes on honest data, names the first bad row after tampering."""

# The statements name the model's own table; values go in as parameters.
# ruff: noqa: S608

import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, connections, transaction

from audit_app.errors import CheckpointDelayed
from audit_app.models import AuditCheckpoint, AuditLog
from audit_app.selectors import audit_verify
from audit_app.services import audit_checkpoint_create, audit_record

from .conftest import raw, tamper

pytestmark = pytest.mark.django_db

LOGS = AuditLog._meta.db_table


def write(count: int) -> list[AuditLog]:
    return [
        audit_record(
            event_type="user.updated",
            actor_id="admin-1",
            user_id=f"user-{i}",
            target_type="user",
            target_id=f"user-{i}",
            metadata={"fields": ["name"], "n": i, "ratio": 0.1, "big": 1e20},
            ip_address="::ffff:192.0.2.1",
            user_agent="agent",
            request_id=f"req-{i}",
        )
        for i in range(count)
    ]


def verify_fails_at(row_id: int, kind: str):
    result = audit_verify()
    assert result.first_bad_row is not None, "tampering went unnoticed"
    assert (result.first_bad_row.row_id, result.first_bad_row.kind) == (row_id, kind)
    with pytest.raises(CommandError, match=f"first bad row: {row_id} "):
        call_command("audit_verify")


def test_honest_data_verifies_with_and_without_checkpoints(capsys):
    write(3)
    assert audit_verify().problems == []
    audit_checkpoint_create(wait_seconds=5)
    write(2)

    result = audit_verify()

    assert result.problems == []
    assert (result.rows, result.checkpoints, result.unsealed_rows) == (5, 1, 2)
    call_command("audit_verify")
    assert "audit trail intact: 5 rows, 1 checkpoints" in capsys.readouterr().out


def test_an_altered_row_is_named(capsys):
    rows = write(5)
    audit_checkpoint_create(wait_seconds=5)

    tamper(f"UPDATE {LOGS} SET metadata = '{{}}' WHERE id = %s", [rows[3].pk])
    tamper(f"UPDATE {LOGS} SET actor_id = 'someone-else' WHERE id = %s", [rows[4].pk])

    verify_fails_at(rows[3].pk, "altered")
    assert f"row {rows[4].pk} does not match its MAC" in capsys.readouterr().err


def test_an_altered_row_after_the_last_checkpoint_is_named_too():
    rows = write(3)

    tamper(f"UPDATE {LOGS} SET event_type = 'user.created' WHERE id = %s", [rows[1].pk])

    verify_fails_at(rows[1].pk, "altered")


def test_a_deleted_row_is_named():
    rows = write(4)
    audit_checkpoint_create(wait_seconds=5)

    tamper(f"DELETE FROM {LOGS} WHERE id = %s", [rows[2].pk])

    verify_fails_at(rows[2].pk, "deleted")


def test_a_row_inserted_out_of_band_is_named():
    rows = write(2)

    tamper(
        f"INSERT INTO {LOGS} (occurred_at, event_type, target_type, target_id, metadata,"
        " user_agent, request_id, row_mac)"
        " VALUES (now(), 'role.assigned', '', '', '{}', '', '', repeat('0', 64))"
    )

    forged = AuditLog.objects.order_by("-id").first()
    assert forged.pk > rows[-1].pk
    verify_fails_at(forged.pk, "altered")


def test_a_copy_of_a_genuine_row_under_an_unused_sealed_id_is_named():
    rows = write(2)
    (unused,) = raw(f"SELECT nextval(pg_get_serial_sequence('{LOGS}', 'id'))")[0]
    write(1)
    audit_checkpoint_create(wait_seconds=5)

    tamper(
        f"INSERT INTO {LOGS} (id, occurred_at, event_type, actor_id, user_id, target_type,"
        " target_id, metadata, ip_address, user_agent, request_id, row_mac)"
        " SELECT %s, occurred_at, event_type, actor_id, user_id, target_type, target_id,"
        f" metadata, ip_address, user_agent, request_id, row_mac FROM {LOGS} WHERE id = %s",
        [unused, rows[0].pk],
    )

    verify_fails_at(unused, "inserted")


def test_a_deleted_checkpoint_breaks_the_chain():
    write(1)
    first = audit_checkpoint_create(wait_seconds=5)
    write(1)
    audit_checkpoint_create(wait_seconds=5)
    write(1)
    audit_checkpoint_create(wait_seconds=5)
    table = AuditCheckpoint._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER audit_checkpoints_append_only")
        cursor.execute(f"DELETE FROM {table} WHERE id = %s", [first.pk + 1])

    problems = audit_verify().problems

    assert [p.kind for p in problems] == ["checkpoint"]
    assert "one is missing" in problems[0].detail


def test_a_checkpoint_waits_for_transactions_that_may_still_add_rows():
    # A row whose transaction is still open when the checkpoint is taken: sealing
    # past its id would later make it look inserted out of band.
    holding, release = threading.Event(), threading.Event()

    def writer():
        try:
            with transaction.atomic():
                audit_record(event_type="user.updated")
                holding.set()
                release.wait(10)
        finally:
            connections.close_all()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert holding.wait(10)
        with pytest.raises(CheckpointDelayed):
            audit_checkpoint_create(wait_seconds=0.3)
        assert not AuditCheckpoint.objects.exists()
    finally:
        release.set()
        thread.join()
