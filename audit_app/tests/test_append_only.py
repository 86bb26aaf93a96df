"""The audit tables are append-only in PostgreSQL, for every role and every way in."""

# The statements name the model's own table; values go in as parameters.
# ruff: noqa: S608

import uuid

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from audit_app.models import AuditCheckpoint, AuditLog
from audit_app.services import audit_checkpoint_create, audit_record

from .conftest import raw

pytestmark = pytest.mark.django_db

LOGS = AuditLog._meta.db_table
CHECKPOINTS = AuditCheckpoint._meta.db_table


@pytest.fixture
def row():
    return audit_record(event_type="user.updated", user_id="u-1", metadata={"field": "name"})


def refused():
    return pytest.raises(DatabaseError, match="append-only")


def test_the_orm_cannot_update_an_audit_row(row):
    row.event_type = "user.created"
    with refused(), transaction.atomic():
        row.save()
    with refused(), transaction.atomic():
        AuditLog.objects.filter(pk=row.pk).update(metadata={})
    assert AuditLog.objects.get(pk=row.pk).event_type == "user.updated"


def test_the_orm_cannot_delete_an_audit_row(row):
    with refused(), transaction.atomic():
        row.delete()
    with refused(), transaction.atomic():
        AuditLog.objects.all().delete()
    assert AuditLog.objects.filter(pk=row.pk).exists()


@pytest.mark.parametrize(
    "statement",
    [
        f"UPDATE {LOGS} SET event_type = 'x'",
        f"DELETE FROM {LOGS}",
        f"TRUNCATE {LOGS}",
        f"UPDATE {CHECKPOINTS} SET row_count = 0",
        f"DELETE FROM {CHECKPOINTS}",
        f"TRUNCATE {CHECKPOINTS}",
    ],
)
def test_raw_sql_cannot_update_delete_or_truncate_even_as_the_table_owner(row, statement):
    audit_checkpoint_create(wait_seconds=5)

    with refused():
        raw(statement)

    assert AuditLog.objects.filter(pk=row.pk, event_type="user.updated").exists()
    assert AuditCheckpoint.objects.count() == 1


def test_a_statement_that_matches_no_row_is_refused_too():
    with refused():
        raw(f"DELETE FROM {LOGS} WHERE id = -1")


def test_the_retention_setting_lets_only_the_owner_delete(row):
    role = f"audit_probe_{uuid.uuid4().hex[:12]}"
    with transaction.atomic(), connection.cursor() as cursor:
        # A role that was (wrongly) granted DELETE: the trigger still stops it.
        cursor.execute(f"CREATE ROLE {role} NOLOGIN")
        cursor.execute(f"GRANT USAGE ON SCHEMA audit TO {role}")
        cursor.execute(f"GRANT SELECT, DELETE, TRUNCATE ON {LOGS} TO {role}")
        cursor.execute(f"SET LOCAL ROLE {role}")
        cursor.execute("SET LOCAL sv.audit_retention = 'on'")
        with refused():
            raw(f"DELETE FROM {LOGS}")
        with refused():
            raw(f"TRUNCATE {LOGS}")
        cursor.execute("RESET ROLE")
        # The owner, with the setting, may: that is a retention run.
        assert raw(f"DELETE FROM {LOGS} WHERE id = %s", [row.pk]) == 1
        transaction.set_rollback(True)


def test_the_retention_setting_never_allows_an_update(row):
    with refused():
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL sv.audit_retention = 'on'")
            cursor.execute(f"UPDATE {LOGS} SET event_type = 'x'")


@pytest.mark.django_db(transaction=True)
def test_flush_still_empties_the_audit_tables():
    audit_record(event_type="user.created")
    audit_checkpoint_create(wait_seconds=5)

    call_command("flush", interactive=False, verbosity=0)

    assert not AuditLog.objects.exists()
    assert not AuditCheckpoint.objects.exists()
    with refused():
        raw(f"TRUNCATE {LOGS}")  # and the table is append-only again afterwards
