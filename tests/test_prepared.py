"""sv_sdk.db.prepared: hand-prepared statements that survive failures and a full cache."""

import pytest
from django.db import DataError, OperationalError, ProgrammingError, connection, transaction

from sv_sdk.db import prepared

pytestmark = pytest.mark.django_db


def run(sql: str, *params):
    with connection.cursor() as cursor:
        prepared.execute_prepared(cursor, name="sv_test", sql=sql, params=list(params))
        return cursor.fetchone()[0]


@pytest.fixture(autouse=True)
def fresh_connection_state():
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
    prepared._prepared.pop(connection.connection, None)


def statements_on_the_server() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM pg_prepared_statements")
        return {name for (name,) in cursor.fetchall()}


def test_the_first_run_prepares_and_later_runs_execute():
    assert run("SELECT 6 / $1::int", 2) == 3
    assert statements_on_the_server() == {"sv_test"}
    assert run("SELECT 6 / $1::int", 3) == 2


def test_a_statement_whose_first_run_failed_runs_again():
    with pytest.raises(DataError), transaction.atomic():
        run("SELECT 6 / $1::int", 0)
    assert run("SELECT 6 / $1::int", 2) == 3
    assert run("SELECT 6 / $1::int", 3) == 2


def test_a_statement_deallocated_behind_its_back_fails_once_then_recovers():
    assert run("SELECT $1::int + 1", 1) == 2
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
    with pytest.raises((OperationalError, ProgrammingError)), transaction.atomic():
        run("SELECT $1::int + 1", 1)
    assert run("SELECT $1::int + 1", 2) == 3


def test_past_the_bound_a_statement_runs_without_staying_prepared(settings):
    settings.SV_PREPARED_STATEMENTS = 0  # DATABASE_PREPARED_STATEMENTS=0
    for _ in range(2):
        assert run("SELECT $1::int", 1) == 1
    assert statements_on_the_server() == set()


def test_at_bound_zero_a_failed_run_leaves_nothing_on_the_server_session(settings):
    # Behind a transaction-mode pooler the server session goes on to other clients, whose
    # own run of the statement must not meet a leftover PREPARE.
    settings.SV_PREPARED_STATEMENTS = 0
    with pytest.raises(DataError), transaction.atomic():
        run("SELECT 6 / $1::int + $1::int", 0)
    assert statements_on_the_server() == set()
    assert run("SELECT 6 / $1::int + $1::int", 2) == 5
