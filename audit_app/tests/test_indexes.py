"""The API's queries are served by indexes on a realistically sized table (EXPLAIN)."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from audit_app.api.views import AuditLogPagination
from audit_app.selectors import audit_log_list
from benchmarks.audit import fill, user_id

pytestmark = pytest.mark.django_db

ROWS = 300_000


@pytest.fixture(scope="module")
def filled(django_db_setup, django_db_blocker):
    # Filled once, for every test of the module, and dropped again at the end.
    with django_db_blocker.unblock():
        fill(ROWS)
        yield
        with connection.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute("SET LOCAL sv.audit_retention = 'on'")
            cursor.execute('TRUNCATE "audit"."audit_logs"')
            cursor.execute("COMMIT")


def first_page_plan(**filters) -> str:
    """The plan, each partition's index named as the parent index it belongs to."""
    rows = audit_log_list(**filters).order_by(*AuditLogPagination.ordering)[:51]
    plan = rows.explain()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, p.relname FROM pg_inherits i"
            " JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent"
            " WHERE c.relkind = 'i' AND p.relname LIKE 'audit%%'"
        )
        for partition_index, parent_index in cursor.fetchall():
            plan = plan.replace(f" {partition_index} ", f" {parent_index} ")
    return plan


MONTH_AGO = timezone.now() - timedelta(days=30)


@pytest.mark.parametrize(
    ("filters", "indexes"),
    [
        ({"user_id": user_id(42), "since": MONTH_AGO}, {"audit_user_time_idx"}),
        ({"user_id": user_id(42)}, {"audit_user_time_idx"}),
        ({"actor_id": user_id(7), "since": MONTH_AGO}, {"audit_actor_time_idx"}),
        # A common type over a month: walking the time index newest first and
        # stopping at 51 rows is as good as the type's own index.
        (
            {"event_type": "auth.sign_in", "since": MONTH_AGO},
            {"audit_event_time_idx", "audit_time_idx"},
        ),
        ({"event_type": "auth.sign_in"}, {"audit_event_time_idx", "audit_time_idx"}),
        ({"target_type": "user", "target_id": user_id(9)}, {"audit_target_time_idx"}),
        ({"since": MONTH_AGO, "until": MONTH_AGO + timedelta(days=1)}, {"audit_time_idx"}),
        ({}, {"audit_time_idx"}),
    ],
)
def test_each_filter_of_the_list_api_is_an_index_scan(filled, filters, indexes):
    plan = first_page_plan(**filters)

    assert any(index in plan for index in indexes), plan
    # Only the empty partitions (next months', the default) may be scanned whole.
    seq_scans = [line for line in plan.splitlines() if "Seq Scan" in line]
    assert all("cost=0.00..0.00 " in line for line in seq_scans), plan
