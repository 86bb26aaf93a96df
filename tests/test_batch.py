"""sv_sdk.db.batch: several statements in one query, in order, all or nothing."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import Value
from django.db.models.functions import Lower
from django.db.models.signals import post_delete

from audit_app.evidence import row_mac
from audit_app.models import AuditLog
from audit_app.services import audit_record
from auth_app.models import Session, User
from auth_app.services import session_create, user_delete
from email_app.models import EmailSend
from permissions_app.models import PermissionCache, Role, UserRole
from platform_app.flows import user_onboard
from sv_sdk.db.batch import Batch
from tests.faults import FailAt

pytestmark = pytest.mark.django_db(transaction=True)


def test_one_query_runs_every_statement_and_returns_each_ones_rows():
    counter = FailAt()
    batch = Batch()
    with connection.execute_wrapper(counter), transaction.atomic():
        roles = batch.select(Role, "name = ANY(%s) ORDER BY name", [["user", "auditor"]])
        batch.insert(Role(name="support", permissions=["users:read"]))
        total = batch.add("SELECT %s::int + %s::int", [2, 3], then=lambda rows: rows[0][0])
        quote = batch.add("SELECT %s::text", ["it's; -- not SQL"])
        with pytest.raises(RuntimeError):
            total.value  # noqa: B018 (not there before the batch runs)
        batch.run()

    assert counter.count == 1
    assert [r.name for r in roles.value] == ["auditor", "user"]
    # Model instances, with their columns converted as the ORM would.
    assert isinstance(roles.value[0].permissions, list)
    assert "audit:read" in roles.value[0].permissions
    assert total.value == 5
    assert quote.value == [("it's; -- not SQL",)]
    assert Role.objects.get(name="support").permissions == ["users:read"]


def test_an_error_raised_by_a_then_leaves_the_callers_transaction_usable():
    # A `then` raises domain errors (TemplateNotFound, Role.DoesNotExist), which a
    # caller may handle and carry on in the same transaction.
    with transaction.atomic():
        batch = Batch()
        batch.add("SELECT 1", then=lambda rows: {}["missing"])
        with pytest.raises(KeyError):
            batch.run()
        assert Role.objects.filter(name="user").exists()


def test_audit_rows_in_a_batch_take_as_many_ids_as_there_are_rows_in_one_more_query():
    ada = user_onboard(email="ada@example.com")
    counter = FailAt()
    batch = Batch()
    with connection.execute_wrapper(counter), transaction.atomic():
        rows = [
            audit_record(event_type="user.updated", user=ada, target=ada, batch=batch)
            for _ in range(4)
        ]
        batch.add("SELECT 1")
        assert not AuditLog.objects.filter(event_type="user.updated").exists()
        before = counter.count
        batch.run()

    assert counter.count - before == 2  # the ids, then the batch
    ids = [row.id for row in rows]
    assert ids == sorted(ids) and len(set(ids)) == 4
    stored = AuditLog.objects.filter(event_type="user.updated").order_by("id")
    assert [row.id for row in stored] == ids
    assert all(row_mac(row) == row.row_mac for row in stored)


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


def test_insert_stores_rows_as_djangos_own_insert_does():
    # The INSERT's text is written once per model and row count; the values
    # are still Django's (defaults, auto_now, arrays, JSON, NULLs, expressions).
    def roles(prefix):
        return [
            Role(name=f"{prefix}-plain", permissions=["users:read", "it's"], description="a\nb"),
            Role(name=f"{prefix}-empty", permissions=[], is_system=True),
            Role(name=Lower(Value(f"{prefix.upper()}-EXPRESSION")), permissions=["*"]),
        ]

    Role.objects.bulk_create(roles("django"))
    batch = Batch()
    batch.insert(roles("batch")[0])  # one row, then two: two texts of the same model
    batch.insert(*roles("batch")[1:])
    batch.add("SELECT 1")
    with transaction.atomic():
        batch.run()

    columns = ["name", "description", "permissions", "is_system"]
    for suffix in ("plain", "empty", "expression"):
        ours = Role.objects.filter(name=f"batch-{suffix}").values(*columns, "updated_at").get()
        theirs = Role.objects.filter(name=f"django-{suffix}").values(*columns).get()
        assert ours["updated_at"] is not None  # auto_now ran
        assert {c: ours[c] for c in columns} == {
            **theirs,
            "name": f"batch-{suffix}",
        }


def test_insert_takes_one_model_at_a_time():
    with pytest.raises(TypeError):
        Batch().insert(Role(name="a"), AuditLog(event_type="x"))


def test_deleting_a_user_cascades_in_one_query_as_django_would():
    admin = user_onboard(email="root@example.com", is_superuser=True)
    ada = user_onboard(email="ada@example.com")  # a role, a cache row, an email, a token
    session_create(user=ada)
    # A row that ada granted (written directly: ada may not grant to a superuser).
    grant = UserRole.objects.create(
        user=admin, role=Role.objects.get(name="auditor"), granted_by=ada
    )
    send = EmailSend.objects.get(user=ada)

    counter = FailAt()
    with connection.execute_wrapper(counter):
        user_delete(user=ada)

    assert counter.count == 1
    assert ada.pk is None
    assert not User.objects.filter(email="ada@example.com").exists()
    assert not Session.objects.exists()
    assert not UserRole.objects.filter(role__name="user", user__email="ada@example.com").exists()
    assert PermissionCache.objects.filter(user=admin).exists()
    assert PermissionCache.objects.count() == 1
    # SET_NULL relations keep their rows.
    send.refresh_from_db()
    assert send.user_id is None
    assert UserRole.objects.get(pk=grant.pk).granted_by_id is None


def test_a_delete_with_signal_receivers_falls_back_to_djangos_own():
    ada = user_onboard(email="ada@example.com")
    seen = []

    def receiver(sender, instance, **kwargs):
        seen.append(instance.email)

    post_delete.connect(receiver, sender=User)
    try:
        user_delete(user=ada)
    finally:
        post_delete.disconnect(receiver, sender=User)
    assert seen == ["ada@example.com"]
    assert not User.objects.exists()
