"""The database layout: four schemas, cross-schema foreign keys, reversible migrations."""

import pytest
from django.core.management import call_command
from django.db import connection

EXPECTED_TABLES = {
    "auth": {
        "users",
        "sessions",
        "accounts",
        "verifications",
        "rate_limits",
        "two_factors",
        "recovery_codes",
        "passkeys",
        "passkey_challenges",
        "oauth_states",
    },
    "permissions": {"roles", "user_roles", "permission_cache"},
    "email": {
        "email_templates",
        "email_sends",
        "email_webhooks",
        "email_preferences",
        "email_suppressions",
    },
    "audit": {"audit_logs", "audit_checkpoints"},
}

# (schema.table.column) -> (schema.table) it references, for keys that cross schemas.
CROSS_SCHEMA_KEYS = {
    ("permissions", "user_roles", "user_id"): ("auth", "users"),
    ("permissions", "user_roles", "granted_by_id"): ("auth", "users"),
    ("permissions", "permission_cache", "user_id"): ("auth", "users"),
    ("email", "email_sends", "user_id"): ("auth", "users"),
    ("email", "email_preferences", "user_id"): ("auth", "users"),
    ("email", "email_suppressions", "lifted_by_id"): ("auth", "users"),
}


def tables_by_schema() -> dict[str, set[str]]:
    with connection.cursor() as cursor:
        # Tables, not their partitions (the audit log's months are created by a job).
        cursor.execute(
            "SELECT n.nspname, c.relname FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition"
            " AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')"
        )
        result: dict[str, set[str]] = {}
        for schema, table in cursor.fetchall():
            result.setdefault(schema, set()).add(table)
        return result


def foreign_keys() -> dict[tuple[str, str, str], tuple[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT n.nspname, c.relname, a.attname, fn.nspname, fc.relname
            FROM pg_constraint con
            JOIN pg_class c ON c.oid = con.conrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_class fc ON fc.oid = con.confrelid
            JOIN pg_namespace fn ON fn.oid = fc.relnamespace
            JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = con.conkey[1]
            WHERE con.contype = 'f'
            """
        )
        return {(s, t, col): (fs, ft) for s, t, col, fs, ft in cursor.fetchall()}


@pytest.mark.django_db
def test_every_table_lives_in_its_schema_and_none_of_ours_in_public():
    tables = tables_by_schema()
    for schema, expected in EXPECTED_TABLES.items():
        assert tables.get(schema) == expected
    ours = set().union(*EXPECTED_TABLES.values())
    assert not ours & tables.get("public", set())


@pytest.mark.django_db
def test_cross_schema_foreign_keys_are_real_constraints():
    keys = foreign_keys()
    for column, target in CROSS_SCHEMA_KEYS.items():
        assert keys.get(column) == target, column
    # The audit log outlives users: it has no foreign keys at all.
    assert not [k for k in keys if k[0] == "audit"]


@pytest.mark.django_db
def test_default_roles_and_templates_are_seeded_by_migrations():
    from email_app.models import EmailTemplate
    from permissions_app.models import Role

    roles = {r.name: r for r in Role.objects.all()}
    assert roles["admin"].permissions == ["*"]
    assert set(roles["auditor"].permissions) == {"audit:read", "audit:export"}
    assert all(roles[name].is_system for name in ("admin", "user", "auditor"))
    keys = set(EmailTemplate.objects.values_list("key", flat=True))
    assert keys >= {"verify-email", "reset-password", "password-changed", "welcome"}


@pytest.mark.django_db(transaction=True)
def test_migrating_to_zero_and_back_removes_then_restores_all_four_schemas():
    try:
        for app in ("audit_app", "email_app", "permissions_app", "auth_app"):
            call_command("migrate", app, "zero", verbosity=0)
        # admin depends on the user model; it was unapplied with auth_app.
        remaining = tables_by_schema()
        for schema in EXPECTED_TABLES:
            assert schema not in remaining
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname = ANY(%s)", [list(EXPECTED_TABLES)]
            )
            assert cursor.fetchall() == []
    finally:
        call_command("migrate", verbosity=0)

    tables = tables_by_schema()
    for schema, expected in EXPECTED_TABLES.items():
        assert tables.get(schema) == expected
    call_command("check_schema_drift", verbosity=0)
