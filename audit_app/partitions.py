"""Monthly partitions of the audit log: naming, creating, and converting a plain table.

PostgreSQL's declarative partitioning, no extension. Each month is a range partition
of `occurred_at` in UTC, named `<table>_yYYYYmMM`; a default partition `<table>_default`
keeps any row whose month has no partition yet (docs/audit.md, "Partitions").
"""

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sv_sdk.db.tables import split_table

# The SQL function that creates one month's partition. SECURITY DEFINER so that the
# partition job, running as the application role, can create partitions (only the
# table owner may) without being able to do anything else as the owner. It:
# - refuses anything but a partitioned table of the audit schema,
# - does nothing when the month's partition exists (so the job is idempotent),
# - gives the new partition the append-only trigger, which PostgreSQL does not copy
#   from the parent for statement-level triggers,
# - moves rows of that month out of the default partition first, keeping their ids
#   and MACs, so creating a partition late never fails and never loses a row. The
#   move is a DELETE from the default partition, let through the append-only trigger
#   (as the owner, with sv.audit_retention on for that one statement).
ADD_PARTITION_SQL = """
CREATE FUNCTION "audit"."add_month_partition"(parent regclass, month date) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET "TimeZone" = 'UTC'
AS $$
DECLARE
    schema_name name;
    table_name name;
    part name;
    default_part text;
    lower_bound timestamptz := date_trunc('month', month::timestamp) AT TIME ZONE 'UTC';
    upper_bound timestamptz := (date_trunc('month', month::timestamp) + interval '1 month')
                               AT TIME ZONE 'UTC';
    stranded boolean := false;
    retention text;
BEGIN
    SELECT n.nspname, c.relname INTO schema_name, table_name
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.oid = parent AND c.relkind = 'p';
    IF schema_name IS DISTINCT FROM 'audit' THEN
        RAISE EXCEPTION '% is not a partitioned table of the audit schema', parent
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    part := table_name || to_char(lower_bound, '"_y"YYYY"m"MM');
    IF to_regclass(format('%I.%I', schema_name, part)) IS NOT NULL THEN
        RETURN NULL;
    END IF;
    default_part := format('%I.%I', schema_name, table_name || '_default');
    IF to_regclass(default_part) IS NOT NULL THEN
        EXECUTE format('SELECT EXISTS (SELECT FROM %s WHERE occurred_at >= $1'
                       ' AND occurred_at < $2)', default_part)
            INTO stranded USING lower_bound, upper_bound;
    END IF;
    IF stranded THEN
        -- A partition cannot be created while the default one holds rows of its range.
        EXECUTE format('ALTER TABLE %s DETACH PARTITION %s', parent, default_part);
    END IF;
    EXECUTE format('CREATE TABLE %I.%I PARTITION OF %s FOR VALUES FROM (%L) TO (%L)',
                   schema_name, part, parent, lower_bound, upper_bound);
    EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE OR DELETE OR TRUNCATE ON %I.%I'
                   ' FOR EACH STATEMENT EXECUTE FUNCTION "audit"."forbid_change"()',
                   table_name || '_append_only', schema_name, part);
    IF stranded THEN
        EXECUTE format('INSERT INTO %I.%I SELECT * FROM %s WHERE occurred_at >= $1'
                       ' AND occurred_at < $2', schema_name, part, default_part)
            USING lower_bound, upper_bound;
        retention := current_setting('sv.audit_retention', true);
        PERFORM set_config('sv.audit_retention', 'on', true);
        EXECUTE format('DELETE FROM %s WHERE occurred_at >= $1 AND occurred_at < $2',
                       default_part)
            USING lower_bound, upper_bound;
        PERFORM set_config('sv.audit_retention', coalesce(retention, ''), true);
        EXECUTE format('ALTER TABLE %s ATTACH PARTITION %s DEFAULT', parent, default_part);
    END IF;
    RETURN part;
END;
$$;
REVOKE EXECUTE ON FUNCTION "audit"."add_month_partition"(regclass, date) FROM PUBLIC;
"""

DROP_ADD_PARTITION_SQL = 'DROP FUNCTION "audit"."add_month_partition"(regclass, date);'

AUDIT_LOGS = '"audit"."audit_logs"'

# The partition job keeps this many months after the current one ready.
MONTHS_AHEAD = 3

_NAME = re.compile(r"_y(\d{4})m(\d{2})$")


def month_start(moment: date | datetime) -> date:
    """The first day of the (UTC) month `moment` falls in."""
    if isinstance(moment, datetime):
        moment = moment.astimezone(UTC).date()
    return moment.replace(day=1)


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def month_end(month: date) -> datetime:
    """The (UTC) moment `month` ends: where its partition's range stops."""
    return datetime.combine(next_month(month), datetime.min.time(), UTC)


def months_between(first: date, last: date) -> list[date]:
    """Every month from `first`'s to `last`'s, both included."""
    months, month = [], month_start(first)
    while month <= month_start(last):
        months.append(month)
        month = next_month(month)
    return months


def months_from(moment: date | datetime, ahead: int) -> list[date]:
    """`moment`'s month and the `ahead` months after it."""
    months = [month_start(moment)]
    for _ in range(ahead):
        months.append(next_month(months[-1]))
    return months


def partition_name(table: str, month: date) -> str:
    """The quoted "schema"."table_yYYYYmMM" of `table`'s partition for `month`."""
    schema, name = split_table(table)
    return f'"{schema}"."{name}_y{month.year:04d}m{month.month:02d}"'


def default_partition_name(table: str) -> str:
    schema, name = split_table(table)
    return f'"{schema}"."{name}_default"'


def month_of_partition(name: str) -> date | None:
    """The month a partition's name stands for; None for the default partition."""
    found = _NAME.search(name.strip('"'))
    return date(int(found[1]), int(found[2]), 1) if found else None


def add_month_partition(cursor, table: str, month: date) -> str | None:
    """Create `table`'s partition for `month` unless it exists; its name, or None."""
    cursor.execute('SELECT "audit"."add_month_partition"(%s::regclass, %s)', [table, month])
    return cursor.fetchone()[0]


_INDEXES_SQL = """
SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid)
FROM pg_index WHERE indrelid = %s::regclass AND NOT indisprimary ORDER BY indexrelid
"""
_PRIMARY_KEY_SQL = (
    "SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'p'"
)


def secondary_indexes(cursor, table: str) -> list[tuple[str, str]]:
    """`table`'s indexes but its primary key: (name, CREATE INDEX statement), oldest first.
    A partitioned table's statements read "ON ONLY" (the table, not its partitions)."""
    cursor.execute(_INDEXES_SQL, [table])
    return cursor.fetchall()


def _table_facts(cursor, table: str):
    cursor.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
    indexes = secondary_indexes(cursor, table)
    cursor.execute(_PRIMARY_KEY_SQL, [table])
    (primary_key,) = cursor.fetchone()
    cursor.execute("SELECT pg_sequence_last_value(pg_get_serial_sequence(%s, 'id'))", [table])
    next_id = (cursor.fetchone()[0] or 0) + 1
    return indexes, primary_key, next_id


def _hand_over(cursor, table: str, indexes, primary_key: str, renamed: str) -> None:
    # The old table gives up its index names, key and sequence to the new one.
    for index, _definition in indexes:
        cursor.execute(f"DROP INDEX {index}")
    cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{primary_key}"')
    cursor.execute(f"ALTER TABLE {table} ALTER COLUMN id DROP IDENTITY")
    cursor.execute(f'ALTER TABLE {table} RENAME TO "{renamed}"')


def _finish(cursor, table: str, old: str, *, next_id: int, key: str, indexes, triggers) -> int:
    """Identity, rows, key, indexes and triggers of the new `table`; the old one dropped."""
    _schema, name = split_table(table)
    cursor.execute(
        f"ALTER TABLE {table} ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY"
        f" (START WITH {int(next_id)})"
    )
    cursor.execute(f"INSERT INTO {table} SELECT * FROM {old}")  # noqa: S608
    rows = cursor.rowcount
    # Building each index once, with room to sort, is what makes the copy affordable.
    cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
    cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{key[0]}" PRIMARY KEY ({key[1]})')
    for _index, definition in indexes:
        cursor.execute(definition)
    for target in triggers:
        cursor.execute(
            f'CREATE TRIGGER "{name}_append_only" BEFORE UPDATE OR DELETE OR TRUNCATE'
            f' ON {target} FOR EACH STATEMENT EXECUTE FUNCTION "audit"."forbid_change"()'
        )
    cursor.execute(f"DROP TABLE {old} CASCADE")
    cursor.execute(f"ANALYZE {table}")
    return rows


@dataclass(frozen=True)
class Conversion:
    rows: int
    months: int


def partition_table(cursor, table: str, *, append_only: bool = True) -> Conversion:
    """Turn the plain audit table `table`, empty or populated, into one partitioned by month.

    Keeps every row, its id and so its MAC, the id sequence's position, the column
    defaults and the secondary indexes (rebuilt on every partition after the copy,
    which is faster than maintaining them row by row). The primary key becomes
    (id, occurred_at): PostgreSQL requires a partitioned table's unique constraints
    to include the partition key. Run it inside a transaction: the table is locked
    throughout, and a failure leaves it as it was.

    `append_only=False` skips the append-only triggers (the schema drift check's
    scratch database has no trigger function).
    """
    schema, name = split_table(table)
    old = f'"{schema}"."{name}_unpartitioned"'
    indexes, primary_key, next_id = _table_facts(cursor, table)
    cursor.execute(f"SELECT min(occurred_at), max(occurred_at) FROM {table}")  # noqa: S608
    first, last = cursor.fetchone()
    _hand_over(cursor, table, indexes, primary_key, f"{name}_unpartitioned")
    cursor.execute(
        f"CREATE TABLE {table} (LIKE {old} INCLUDING DEFAULTS INCLUDING STORAGE)"
        " PARTITION BY RANGE (occurred_at)"
    )
    default = default_partition_name(table)
    cursor.execute(f"CREATE TABLE {default} PARTITION OF {table} DEFAULT")
    months = months_between(first, last) if first is not None else []
    for month in months:
        add_month_partition(cursor, table, month)
    rows = _finish(
        cursor,
        table,
        old,
        next_id=next_id,
        key=(primary_key, "id, occurred_at"),
        indexes=indexes,
        triggers=(table, default) if append_only else (),
    )
    return Conversion(rows=rows, months=len(months))


def unpartition_table(cursor, table: str) -> int:
    """The reverse of partition_table: one plain table again, primary key (id); rows kept."""
    schema, name = split_table(table)
    old = f'"{schema}"."{name}_partitioned"'
    indexes, primary_key, next_id = _table_facts(cursor, table)
    _hand_over(cursor, table, indexes, primary_key, f"{name}_partitioned")
    cursor.execute(f"CREATE TABLE {table} (LIKE {old} INCLUDING DEFAULTS INCLUDING STORAGE)")
    return _finish(
        cursor,
        table,
        old,
        next_id=next_id,
        key=(primary_key, "id"),
        indexes=indexes,
        triggers=(table,),
    )


def partition_scratch_table(sender, connection, **kwargs) -> None:
    """Shape the audit log in check_schema_drift's scratch database as migration 0003 does."""
    from django.db import transaction

    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        partition_table(cursor, AUDIT_LOGS, append_only=False)
