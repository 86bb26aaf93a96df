"""sv_sdk.db.batch: several statements in one query, in order, all or nothing."""

import pytest
from django.db import IntegrityError, connection, transaction

from audit_app.models import AuditLog
from permissions_app.models import Role
from sv_sdk.db.batch import Batch
from tests.faults import FailAt

pytestmark = pytest.mark.django_db(transaction=True)


def test_one_query_runs_every_statement_and_returns_each_ones_rows():
    counter = FailAt()
    batch = Batch()
    with connection.execute_wrapper(counter), transaction.atomic():
        roles_at = batch.select(Role, "name = ANY(%s) ORDER BY name", [["user", "auditor"]])
        batch.insert(Role(name="support", permissions=["users:read"]))
        sum_at = batch.add("SELECT %s::int + %s::int", [2, 3])
        quote_at = batch.add("SELECT %s::text", ["it's; -- not SQL"])
        results = batch.run()

    assert counter.count == 1
    roles = results[roles_at]
    assert [r.name for r in roles] == ["auditor", "user"]
    # Model instances, with their columns converted as the ORM would.
    assert isinstance(roles[0].permissions, list) and "audit:read" in roles[0].permissions
    assert results[sum_at] == [(5,)]
    assert results[quote_at] == [("it's; -- not SQL",)]
    assert Role.objects.get(name="support").permissions == ["users:read"]


def test_an_error_stops_the_query_and_the_transaction_keeps_nothing_of_it():
    role_count = Role.objects.count()
    batch = Batch()
    batch.insert(Role(name="first", permissions=[]))
    batch.insert(Role(name="user", permissions=[]))  # taken: the unique name fails here
    batch.add("SELECT nextval(pg_get_serial_sequence(%s, 'id'))", [AuditLog._meta.db_table])

    with pytest.raises(IntegrityError), transaction.atomic():
        batch.run()

    assert Role.objects.count() == role_count
    assert not Role.objects.filter(name="first").exists()


def test_insert_takes_one_model_at_a_time():
    with pytest.raises(TypeError):
        Batch().insert(Role(name="a"), AuditLog(event_type="x"))
