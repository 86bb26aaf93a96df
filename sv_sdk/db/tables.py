"""Names of the project's schemas and schema-qualified tables."""

SCHEMAS = ("auth", "email", "audit", "permissions")


def schema_table(schema: str, table: str) -> str:
    """Return the quoted `"schema"."table"` name that models use as db_table."""
    if schema not in SCHEMAS:
        raise ValueError(f"unknown schema {schema!r}; expected one of {SCHEMAS}")
    return f'"{schema}"."{table}"'


def split_table(name: str) -> tuple[str | None, str]:
    """Split a db_table into (schema, table); schema is None for a bare name."""
    if name.startswith('"') and name.endswith('"') and '"."' in name:
        schema, table = name[1:-1].split('"."', 1)
        return schema, table
    return None, name.strip('"')
