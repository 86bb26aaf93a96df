"""The audit log in the admin: read-only for everyone, filterable and searchable."""

from django.contrib import admin
from django.db.models import Q

from sv_sdk.admin_mixins import KeysetAdminMixin, ReadOnlyAdminMixin, WithinFilter

from .models import EVENT_TYPES, READABLE_FIELDS, AuditCheckpoint, AuditLog


class EventTypeFilter(admin.SimpleListFilter):
    # The known types, rather than Django's SELECT DISTINCT over millions of rows.
    title = "event type"
    parameter_name = "event_type"

    def lookups(self, request, model_admin):
        return [(event_type, event_type) for event_type in EVENT_TYPES]

    def queryset(self, request, queryset):
        return queryset.filter(event_type=self.value()) if self.value() else queryset


class OccurredFilter(WithinFilter):
    title = "occurred"
    field = "occurred_at"
    periods = {
        "1d": ("last 24 hours", 1),
        "2d": ("last 48 hours", 2),
        "7d": ("last 7 days", 7),
        "30d": ("last 30 days", 30),
    }


@admin.register(AuditLog)
class AuditLogAdmin(KeysetAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    # The readable columns but the long ones (metadata, user agent, request id).
    list_display = [
        name for name in READABLE_FIELDS if name not in ("metadata", "user_agent", "request_id")
    ]
    list_filter = [EventTypeFilter, OccurredFilter]
    search_fields = ["actor_id", "user_id", "request_id", "event_type"]
    search_help_text = "Exact id of a row, actor, user or request, or an event type."
    readonly_fields = [field.name for field in AuditLog._meta.fields]
    export_fields = READABLE_FIELDS
    export_permission = "audit:export"

    def get_search_results(self, request, queryset, search_term):
        # Exact matches only, each served by an index; a substring search would
        # scan the whole table.
        term = search_term.strip()
        if not term:
            return queryset, False
        match = Q(actor_id=term) | Q(user_id=term) | Q(request_id=term) | Q(event_type=term)
        if term.isdigit() and int(term) < 2**63:
            match |= Q(id=int(term))
        return queryset.filter(match), False


@admin.register(AuditCheckpoint)
class AuditCheckpointAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "created_at", "after_id", "last_id", "row_count"]
    readonly_fields = [field.name for field in AuditCheckpoint._meta.fields]
