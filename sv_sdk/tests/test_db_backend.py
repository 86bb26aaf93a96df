"""The schema-aware backend: introspection, flush, sequences and the schema editor."""

import pytest
from django.core.management import call_command
from django.core.management.color import no_style
from django.db import connection, migrations, models, transaction
from django.db.backends.postgresql.introspection import (
    DatabaseIntrospection as StockIntrospection,
)
from django.db.backends.postgresql.schema import DatabaseSchemaEditor as StockSchemaEditor
from django.db.migrations.state import ModelState, ProjectState
from django.db.models.functions import Lower

from audit_app.models import AuditLog
from conftest import table_counts
from permissions_app.models import Role
from platform_app.flows import user_onboard
from sv_sdk.db.tables import schema_table

OUR_TABLES = {
    schema_table(schema, table)
    for schema, table in [
        ("auth", "users"),
        ("auth", "sessions"),
        ("auth", "accounts"),
        ("auth", "verifications"),
        ("auth", "rate_limits"),
        ("permissions", "roles"),
        ("permissions", "user_roles"),
        ("permissions", "permission_cache"),
        ("email", "email_templates"),
        ("email", "email_sends"),
        ("email", "email_webhooks"),
        ("email", "email_preferences"),
        ("audit", "audit_logs"),
    ]
}


def unique_constraints(table: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'u'",
            [table],
        )
        return {row[0] for row in cursor.fetchall()}


def catalog_indexes(schema: str, table: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = %s AND tablename = %s",
            [schema, table],
        )
        return {row[0] for row in cursor.fetchall()}


@pytest.mark.django_db
def test_introspection_lists_every_project_table_under_its_qualified_name():
    names = set(connection.introspection.table_names())
    assert names >= OUR_TABLES
    assert "django_migrations" in names  # tables on search_path still appear bare
    # Django's own introspection sees none of them: the bug this backend fixes.
    assert not set(StockIntrospection(connection).table_names()) & OUR_TABLES


@pytest.mark.django_db
def test_introspection_describes_constraints_relations_and_columns_of_schema_tables():
    with connection.cursor() as cursor:
        table = schema_table("permissions", "user_roles")
        relations = connection.introspection.get_relations(cursor, table)
        constraints = connection.introspection.get_constraints(cursor, table)
        columns = [c.name for c in connection.introspection.get_table_description(cursor, table)]
    assert relations["user_id"] == ("id", schema_table("auth", "users"))
    assert relations["role_id"] == ("id", schema_table("permissions", "roles"))
    assert constraints["user_roles_user_role_uniq"]["columns"] == ["user_id", "role_id"]
    assert constraints["user_roles_user_role_uniq"]["unique"]
    assert "expires_at" in columns


@pytest.mark.django_db(transaction=True)
def test_flush_empties_the_tables_of_all_four_schemas():
    user_onboard(email="flush@example.com")
    counts = table_counts()
    for schema in ("auth", "permissions", "email", "audit"):
        assert sum(n for t, n in counts.items() if t.startswith(f"{schema}.")) > 0, schema

    call_command("flush", interactive=False, verbosity=0)

    assert {t: n for t, n in table_counts().items() if n and t != "procrastinate_jobs"} == {}


@pytest.mark.django_db(transaction=True, reset_sequences=True)
def test_reset_sequences_restarts_the_audit_log_identity():
    assert connection.introspection.sequence_list()
    first = AuditLog.objects.create(event_type="test.event")
    assert first.id == 1


@pytest.mark.django_db(transaction=True)
def test_sequence_reset_sql_finds_the_audit_log_identity():
    for _ in range(3):
        AuditLog.objects.create(event_type="test.event")
    # Table emptied out of band, by a retention run (the only DELETE the trigger allows).
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL sv.audit_retention = 'on'")
        AuditLog.objects.all()._raw_delete(AuditLog.objects.db)

    sequences = [s for s in connection.introspection.sequence_list() if "audit_logs" in s["table"]]
    assert [s["column"] for s in sequences] == ["id"]
    with connection.cursor() as cursor:
        for sql in connection.ops.sequence_reset_by_name_sql(no_style(), sequences):
            cursor.execute(sql)
    assert AuditLog.objects.create(event_type="test.event").id == 1


# A throwaway model in the audit schema, changed through real migration operations.
APP = "backend_probe"
TABLE = schema_table("audit", "backend_probe")


def probe_state(**extra_options) -> ProjectState:
    state = ProjectState()
    state.add_model(
        ModelState(
            APP,
            "Probe",
            [
                ("id", models.BigAutoField(primary_key=True)),
                ("code", models.CharField(max_length=20, unique=True)),
                ("label", models.CharField(max_length=20, db_index=True)),
                ("rank", models.IntegerField()),
            ],
            options={
                "db_table": TABLE,
                "indexes": [models.Index(fields=["rank"], name="probe_rank_idx")],
                **extra_options,
            },
        )
    )
    return state


def apply(operation, state, editor) -> ProjectState:
    new_state = state.clone()
    operation.state_forwards(APP, new_state)
    operation.database_forwards(APP, editor, state, new_state)
    return new_state


@pytest.fixture
def probe_table(transactional_db):
    state = probe_state()
    with connection.schema_editor() as editor:
        editor.create_model(state.apps.get_model(APP, "Probe"))
    yield state
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {TABLE}")


def test_altering_a_field_to_drop_unique_drops_the_constraint(probe_table):
    assert unique_constraints(TABLE)

    with connection.schema_editor() as editor:
        apply(
            migrations.AlterField("Probe", "code", models.CharField(max_length=20)),
            probe_table,
            editor,
        )

    assert not unique_constraints(TABLE)
    assert not any("code" in name for name in catalog_indexes("audit", "backend_probe"))


def test_dropping_db_index_removes_the_index_and_its_like_twin(probe_table):
    assert [n for n in catalog_indexes("audit", "backend_probe") if "label" in n]

    with connection.schema_editor() as editor:
        apply(
            migrations.AlterField("Probe", "label", models.CharField(max_length=20)),
            probe_table,
            editor,
        )

    assert not [n for n in catalog_indexes("audit", "backend_probe") if "label" in n]


def test_removing_and_renaming_indexes_changes_the_live_database(probe_table):
    with connection.schema_editor() as editor:
        state = apply(
            migrations.RenameIndex(
                "Probe", new_name="probe_rank_renamed", old_name="probe_rank_idx"
            ),
            probe_table,
            editor,
        )
    indexes = catalog_indexes("audit", "backend_probe")
    assert "probe_rank_renamed" in indexes and "probe_rank_idx" not in indexes

    with connection.schema_editor() as editor:
        apply(migrations.RemoveIndex("Probe", "probe_rank_renamed"), state, editor)
    assert "probe_rank_renamed" not in catalog_indexes("audit", "backend_probe")


def test_removing_a_unique_constraint_on_an_expression_drops_its_index(probe_table):
    lower_code = models.UniqueConstraint(Lower("code"), name="probe_code_lower_uniq")
    with connection.schema_editor() as editor:
        state = apply(migrations.AddConstraint("Probe", lower_code), probe_table, editor)
    assert "probe_code_lower_uniq" in catalog_indexes("audit", "backend_probe")

    with connection.schema_editor() as editor:
        apply(migrations.RemoveConstraint("Probe", "probe_code_lower_uniq"), state, editor)

    assert "probe_code_lower_uniq" not in catalog_indexes("audit", "backend_probe")


def test_stock_django_silently_keeps_the_unique_constraint(probe_table):
    """The control: Django's own backend reports success and changes nothing."""

    class StockEditor(StockSchemaEditor):
        pass

    stock = StockEditor(connection)
    original = connection.introspection
    connection.introspection = StockIntrospection(connection)
    try:
        with stock:
            apply(
                migrations.AlterField("Probe", "code", models.CharField(max_length=20)),
                probe_table,
                stock,
            )
            apply(migrations.RemoveIndex("Probe", "probe_rank_idx"), probe_table, stock)
    finally:
        connection.introspection = original
    assert unique_constraints(TABLE)
    assert "probe_rank_idx" in catalog_indexes("audit", "backend_probe")


def test_renaming_a_schema_table_keeps_it_in_its_schema(probe_table):
    with connection.schema_editor() as editor:
        apply(
            migrations.AlterModelTable("Probe", schema_table("audit", "backend_probe_2")),
            probe_table,
            editor,
        )
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT to_regclass('audit.backend_probe_2') IS NOT NULL")
            assert cursor.fetchone()[0]
    finally:
        with connection.cursor() as cursor:
            cursor.execute('DROP TABLE IF EXISTS "audit"."backend_probe_2"')


@pytest.mark.django_db
def test_the_drift_check_passes_after_migrate():
    call_command("check_schema_drift", verbosity=0)


@pytest.mark.django_db
def test_the_drift_check_reports_a_column_the_models_do_not_declare():
    from django.core.management.base import CommandError

    with connection.cursor() as cursor:
        cursor.execute('ALTER TABLE "auth"."users" ADD COLUMN nickname text')
    with pytest.raises(CommandError, match="schema drift: 0 missing, 1 unexpected"):
        call_command("check_schema_drift", verbosity=0)


@pytest.mark.django_db
def test_the_drift_check_reports_a_dropped_unique_constraint():
    from django.core.management.base import CommandError

    with connection.cursor() as cursor:
        cursor.execute('ALTER TABLE "permissions"."roles" DROP CONSTRAINT IF EXISTS roles_name_key')
        cursor.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = "
            "'\"permissions\".\"roles\"'::regclass AND contype = 'u'"
        )
        for (name,) in cursor.fetchall():
            cursor.execute(f'ALTER TABLE "permissions"."roles" DROP CONSTRAINT "{name}"')
    with pytest.raises(CommandError, match="missing"):
        call_command("check_schema_drift", verbosity=0)
    assert Role.objects.exists()


@pytest.mark.django_db
def test_select_for_update_of_a_schema_table_is_valid_sql():
    from django.db import transaction

    from auth_app.models import Verification

    with transaction.atomic():
        rows = list(Verification.objects.select_for_update(of=("self",)).select_related("user")[:1])
    assert rows == []
