from django.apps import AppConfig


class AuditAppConfig(AppConfig):
    name = "audit_app"
    verbose_name = "Audit"

    def ready(self):
        from django.contrib import admin
        from django.contrib.admin.models import LogEntry
        from django.db.models.signals import post_save

        from sv_sdk.db.signals import scratch_models_created

        from .admin_log import audited_delete_selected, log_entry_saved
        from .partitions import partition_scratch_table

        post_save.connect(log_entry_saved, sender=LogEntry, dispatch_uid="audit_admin_action")
        scratch_models_created.connect(partition_scratch_table, dispatch_uid="audit_partitions")
        # Replaces the site-wide action of the same name.
        admin.site.add_action(audited_delete_selected, "delete_selected")
