"""Converting a populated audit table into monthly partitions, as migration 0003 does.

Runs after the audit section in `python -m benchmarks`: it copies that section's rows
into a plain table shaped as the audit log was before 0003 (primary key (id) and the
six secondary indexes), times `audit_app.partitions.partition_table` on it (the
migration's own routine: copy into the partitions, key and indexes rebuilt, ANALYZE),
and drops the result. `python -m benchmarks --section partitions --audit-rows N` runs it
alone on a fresh bench database, filling N rows itself.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from .tables import markdown_table, text_table

COPY = '"audit"."audit_logs_conversion"'
_INDEX_HEAD = re.compile(r"^CREATE INDEX (\S+) ON (?:ONLY )?\S+ ")


@dataclass(frozen=True)
class PartitionRun:
    rows: int
    months: int
    setup_seconds: float
    convert_seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.convert_seconds


def partitions_run() -> PartitionRun:
    """Time the conversion of a plain copy of the audit log's current rows."""
    from django.db import connection, transaction

    from audit_app.models import AuditLog
    from audit_app.partitions import partition_table, secondary_indexes

    table = AuditLog._meta.db_table
    started = time.perf_counter()
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
            cursor.execute(
                f"CREATE TABLE {COPY} (LIKE {table} INCLUDING DEFAULTS INCLUDING IDENTITY)"
            )
            cursor.execute(f"INSERT INTO {COPY} SELECT * FROM {table}")
            cursor.execute(f"ALTER TABLE {COPY} ADD PRIMARY KEY (id)")
            for _name, definition in secondary_indexes(cursor, table):
                # The same indexes on the copy, under other names (names are per schema).
                cursor.execute(
                    _INDEX_HEAD.sub(rf"CREATE INDEX \1_conversion ON {COPY} ", definition)
                )
            cursor.execute(f"ANALYZE {COPY}")
        setup = time.perf_counter() - started
        started = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cursor:
            conversion = partition_table(cursor, COPY)
        convert = time.perf_counter() - started
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {COPY} CASCADE")
    return PartitionRun(
        rows=conversion.rows,
        months=conversion.months,
        setup_seconds=setup,
        convert_seconds=convert,
    )


_HEADER = ("rows", "months", "conversion", "rows per second")


def _rows(run: PartitionRun) -> list[tuple[str, ...]]:
    return [
        (
            f"{run.rows:,}",
            f"{run.months}",
            f"{run.convert_seconds:.1f} s",
            f"{run.rows_per_second:,.0f}",
        )
    ]


def _note(run: PartitionRun) -> str:
    return (
        "The audit log's conversion to monthly partitions (migration 0003's routine,"
        " `audit_app.partitions.partition_table`) on a plain copy of the audit section's"
        " rows with the pre-0003 primary key and indexes: copy into one partition per month,"
        " primary key (id, occurred_at) and the six indexes rebuilt on every partition,"
        " ANALYZE; one transaction, during which audit inserts wait. Making the copy took"
        f" {run.setup_seconds:.0f} s (not counted)."
    )


def text(run: PartitionRun) -> str:
    return "\n".join(["Audit log partitioning:", *text_table(_HEADER, _rows(run)), _note(run)])


def markdown(run: PartitionRun) -> str:
    return "\n".join(
        [
            "## Partitioning the audit log",
            "",
            *markdown_table(_HEADER, _rows(run)),
            "",
            _note(run),
            "",
        ]
    )
