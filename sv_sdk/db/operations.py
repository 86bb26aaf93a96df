"""Migration operations for the project's schemas, and the backend's SQL operations."""

from django.db import migrations
from django.db.backends.postgresql import operations

from .tables import SCHEMAS, split_table


def create_schemas_sql() -> list[str]:
    return [f'CREATE SCHEMA IF NOT EXISTS "{schema}"' for schema in SCHEMAS]


class CreateSchema(migrations.RunSQL):
    """Create a schema before the app's first table; drop it (if empty) when unapplied."""

    def __init__(self, name: str):
        if name not in SCHEMAS:
            raise ValueError(f"unknown schema {name!r}")
        self.schema_name = name
        super().__init__(
            sql=f'CREATE SCHEMA IF NOT EXISTS "{name}"',
            # No CASCADE: unapplying never destroys objects this app did not create.
            reverse_sql=f'DROP SCHEMA IF EXISTS "{name}"',
        )

    def deconstruct(self):
        return ("sv_sdk.db.operations.CreateSchema", [self.schema_name], {})


class DatabaseOperations(operations.DatabaseOperations):
    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
        statements = super().sql_flush(
            style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade
        )
        if not statements:
            return statements
        # The audit tables refuse TRUNCATE unless the table owner's transaction
        # says it is a retention run (audit_app migration 0002). Flush empties the
        # whole database on purpose, inside one transaction (execute_sql_flush),
        # so it says so; any other role is still refused by the trigger.
        return ["SET LOCAL sv.audit_retention = 'on';", *statements]

    def for_update_sql(self, nowait=False, skip_locked=False, of=(), no_key=False):
        # Django names a schema table in FOR UPDATE OF by its db_table,
        # '"auth"."verifications"', which PostgreSQL rejects: OF takes the
        # relation's name as the FROM clause exposes it, unqualified.
        of = tuple(self.quote_name(split_table(name)[1]) for name in of)
        return super().for_update_sql(nowait=nowait, skip_locked=skip_locked, of=of, no_key=no_key)
