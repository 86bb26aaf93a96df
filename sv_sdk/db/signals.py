"""Signals of the database layer."""

from django.dispatch import Signal

# Sent by check_schema_drift once it has built the models' tables in its scratch
# database (argument: connection), for apps whose tables are more than their model
# says, such as the audit log partitioned by month, to shape them the same way.
scratch_models_created = Signal()
