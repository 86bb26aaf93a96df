"""The audit log in the admin: read-only for everyone."""

from django.contrib import admin

from .models import AuditLog


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "occurred_at",
        "event_type",
        "actor_id",
        "user_id",
        "target_type",
        "target_id",
    ]
    list_filter = ["event_type", "target_type"]
    search_fields = ["event_type", "actor_id", "user_id", "target_id", "request_id"]
    date_hierarchy = "occurred_at"
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
