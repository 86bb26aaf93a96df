"""audit.audit_logs becomes partitioned by month of occurred_at, rows and all.

The conversion copies the existing rows (ids and MACs unchanged) into monthly
partitions inside this migration's transaction; the table is locked meanwhile.
`make bench` times it on 10 million rows. See docs/audit.md, "Partitions".
"""

import importlib

from django.db import migrations
from django.utils import timezone

from audit_app.partitions import (
    ADD_PARTITION_SQL,
    AUDIT_LOGS,
    DROP_ADD_PARTITION_SQL,
    MONTHS_AHEAD,
    add_month_partition,
    months_from,
    partition_table,
    unpartition_table,
)

# The append-only trigger's function as 0002 made it, but for its hint: retention no
# longer deletes rows (audit_prune is gone), it detaches months (audit_archive).
_0002 = importlib.import_module("audit_app.migrations.0002_append_only_evidence")
_OLD_FUNCTION = _0002.APPEND_ONLY_SQL.split("CREATE TRIGGER", 1)[0].replace(
    "CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1
)
_NEW_FUNCTION = _OLD_FUNCTION.replace(
    "Only a retention run by the table owner deletes audit rows (manage.py audit_prune).",
    "Retention detaches whole months, as the table owner (manage.py audit_archive).",
)


def partition(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        partition_table(cursor, AUDIT_LOGS)
        for month in months_from(timezone.now(), MONTHS_AHEAD):
            add_month_partition(cursor, AUDIT_LOGS, month)


def unpartition(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        unpartition_table(cursor, AUDIT_LOGS)


class Migration(migrations.Migration):
    dependencies = [
        ("audit_app", "0002_append_only_evidence"),
    ]

    operations = [
        migrations.RunSQL(_NEW_FUNCTION, _OLD_FUNCTION),
        migrations.RunSQL(ADD_PARTITION_SQL, DROP_ADD_PARTITION_SQL),
        migrations.RunPython(partition, unpartition),
    ]
