"""The publication a second cluster subscribes to for the audit schema (docs/audit-cluster.md)."""

from django.db import migrations

# Inserts only: the subscriber keeps every row ever written, whatever happens to the primary's
# copy later (a retention run, or someone with the owner's rights deleting evidence).
# publish_via_partition_root: rows of a partitioned audit table arrive as rows of the table
# itself, whatever partitions either side has. Listing the tables (not the schema) needs only
# their ownership, so the owner role's migrations can create it; PostgreSQL adds new
# partitions of a listed table by itself.
CREATE_PUBLICATION = """
CREATE PUBLICATION sv_audit FOR TABLE "audit"."audit_logs", "audit"."audit_checkpoints"
    WITH (publish = 'insert', publish_via_partition_root = true)
"""


class Migration(migrations.Migration):
    dependencies = [
        ("audit_app", "0003_audit_logs_monthly_partitions"),
    ]

    operations = [
        migrations.RunSQL(CREATE_PUBLICATION, "DROP PUBLICATION IF EXISTS sv_audit"),
    ]
