"""Migration operations for the project's schemas."""

from django.db import migrations

from .tables import SCHEMAS


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
