"""audit.audit_logs becomes partitioned by month of occurred_at, rows and all.

The conversion copies the existing rows (ids and MACs unchanged) into monthly
partitions inside this migration's transaction; the table is locked meanwhile.
`make bench` times it on 10 million rows. See docs/audit.md, "Partitions".
"""

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

# The append-only trigger's function, as in 0002 but for its hint: retention no longer
# deletes rows (audit_prune is gone), it detaches months (audit_archive).
_FORBID_CHANGE_SQL = """
CREATE OR REPLACE FUNCTION "audit"."forbid_change"() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'TRUNCATE')
       AND current_setting('sv.audit_retention', true) = 'on'
       AND pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = TG_RELID), 'MEMBER')
    THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION '%.% is append-only: % is not allowed', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = <hint>;
END;
$$;
"""
NEW_HINT = "'Retention detaches whole months as the table owner (manage.py audit_archive).'"
OLD_HINT = "'Only a retention run by the table owner deletes audit rows (manage.py audit_prune).'"


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
        migrations.RunSQL(
            _FORBID_CHANGE_SQL.replace("<hint>", NEW_HINT),
            _FORBID_CHANGE_SQL.replace("<hint>", OLD_HINT),
        ),
        migrations.RunSQL(ADD_PARTITION_SQL, DROP_ADD_PARTITION_SQL),
        migrations.RunPython(partition, unpartition),
    ]
