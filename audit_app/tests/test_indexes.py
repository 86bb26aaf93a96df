"""The API's queries are served by indexes on a realistically sized table (EXPLAIN)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from audit_app.api.views import AuditLogPagination
from audit_app.selectors import audit_log_list
from benchmarks.audit import fill, user_id

pytestmark = pytest.mark.django_db

ROWS = 300_000


@pytest.fixture(scope="module")
def filled(django_db_setup, django_db_blocker):
    # Filled once, for every test of the module, and dropped again at the end.
    from django.db import connection

    with django_db_blocker.unblock():
        fill(ROWS)
        yield
        with connection.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute("SET LOCAL sv.audit_retention = 'on'")
            cursor.execute('TRUNCATE "audit"."audit_logs"')
            cursor.execute("COMMIT")


def first_page_plan(**filters) -> str:
    rows = audit_log_list(**filters).order_by(*AuditLogPagination.ordering)[:51]
    return rows.explain()


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
    assert "Seq Scan" not in plan, plan
