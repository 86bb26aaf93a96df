"""Fixtures for the audit tests."""

import uuid

import pytest
from django.db import connection, transaction

from audit_app.models import AuditLog
from audit_app.services import _insert_sealed
from permissions_app.models import Role
from permissions_app.services import role_grant
from platform_app.flows import user_onboard
from sv_sdk.db.batch import Batch
from tests.support import api_client


@pytest.fixture
def auditor():
    user = user_onboard(email=f"auditor-{uuid.uuid4().hex[:8]}@example.com", name="Auditor")
    role_grant(user=user, role=Role.objects.get(name="auditor"))
    return user


@pytest.fixture
def auditor_client(auditor):
    return api_client(auditor)


def raw(sql: str, params=None):
    """Run one statement in a savepoint, so a refused one leaves the test's transaction usable."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else cursor.rowcount


def tamper(sql: str, params=None):
    """What an owner who turns the append-only trigger off can do."""
    table = AuditLog._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER audit_logs_append_only")
        cursor.execute(sql, params)
        cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER audit_logs_append_only")


def sealed_rows_at(moment, count: int) -> list[AuditLog]:
    """`count` rows that happened at `moment`, written as audit_record writes (id first, MAC)."""
    rows = [
        AuditLog(
            occurred_at=moment,
            event_type="user.updated",
            user_id=f"user-{i}",
            target_type="user",
            target_id=f"user-{i}",
            metadata={"n": i},
            ip_address="192.0.2.1",
        )
        for i in range(count)
    ]
    for start in range(0, count, 2000):
        batch = Batch()
        for row in rows[start : start + 2000]:
            batch.gather(_insert_sealed, row)
        batch.run()
    return rows
