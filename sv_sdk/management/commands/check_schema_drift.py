"""Compare the live schemas with what the models declare; fail on any difference."""

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections

from sv_sdk.db.operations import create_schemas_sql
from sv_sdk.db.signals import scratch_models_created
from sv_sdk.db.tables import SCHEMAS

PROJECT_APPS = ("auth_app", "permissions_app", "email_app", "audit_app")

# One row per column, constraint and index in the project's schemas. Partitions are
# left out: a job creates them at run time, and each has its parent's shape.
_CATALOG_SQL = """
SELECT 'column', c.relname, a.attname,
       format_type(a.atttypid, a.atttypmod)
       || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
       || CASE WHEN a.attidentity <> '' THEN ' IDENTITY' ELSE '' END
       || coalesce(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), '')
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid AND c.relkind IN ('r', 'p') AND NOT c.relispartition
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE n.nspname = ANY(%(schemas)s) AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'constraint', c.relname, con.conname, pg_get_constraintdef(con.oid)
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid AND NOT c.relispartition
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY(%(schemas)s)
UNION ALL
SELECT 'index', c.relname, i.relname, pg_get_indexdef(x.indexrelid)
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class c ON c.oid = x.indrelid AND NOT c.relispartition
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY(%(schemas)s)
"""


def catalog(connection) -> set[tuple[str, str, str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(_CATALOG_SQL, {"schemas": list(SCHEMAS)})
        return set(cursor.fetchall())


class Command(BaseCommand):
    help = (
        "Build the models' tables in a scratch database and compare their columns, "
        "constraints and indexes with the live database."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--database",
            default=DEFAULT_DB_ALIAS,
            help="Database alias to check (default: default).",
        )

    def handle(self, *args, database, **options):
        live = connections[database]
        declared = self._declared_catalog(live)
        actual = catalog(live)
        missing = sorted(declared - actual)
        unexpected = sorted(actual - declared)
        for heading, rows in (
            ("declared by models, missing in database", missing),
            ("in database, not declared by models", unexpected),
        ):
            for kind, table, name, definition in rows:
                self.stderr.write(f"{heading}: {kind} {table}.{name}: {definition}")
        if missing or unexpected:
            raise CommandError(
                f"schema drift: {len(missing)} missing, {len(unexpected)} unexpected "
                "(run makemigrations, or fix the migration that diverged)"
            )
        self.stdout.write(f"No schema drift ({len(actual)} columns, constraints and indexes).")

    def _declared_catalog(self, live) -> set:
        scratch_name = f"{live.settings_dict['NAME']}_drift"
        options = {k: v for k, v in live.settings_dict["OPTIONS"].items() if k != "pool"}
        scratch = live.__class__(
            {**live.settings_dict, "NAME": scratch_name, "OPTIONS": options}, alias="__drift__"
        )
        models = [m for app in PROJECT_APPS for m in apps.get_app_config(app).get_models()]
        with live._nodb_cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{scratch_name}"')
            cursor.execute(f'CREATE DATABASE "{scratch_name}"')
        # The schema editor looks its connection up by alias.
        connections["__drift__"] = scratch
        try:
            with scratch.schema_editor() as editor:
                for statement in create_schemas_sql():
                    editor.execute(statement)
                for model in models:
                    editor.create_model(model)
            scratch_models_created.send(sender=self.__class__, connection=scratch)
            return catalog(scratch)
        finally:
            scratch.close()
            del connections["__drift__"]
            with live._nodb_cursor() as cursor:
                cursor.execute(f'DROP DATABASE IF EXISTS "{scratch_name}"')
