"""Admin pages for templates, the outbox, webhook events and preferences."""

from django.contrib import admin

from .models import EmailPreference, EmailSend, EmailTemplate, EmailWebhook


@admin.register(EmailTemplate)
class EmailTemplateAdmin(admin.ModelAdmin):
    list_display = ["key", "locale", "subject", "version", "is_active", "updated_at"]
    list_filter = ["locale", "is_active"]
    search_fields = ["key", "subject", "description"]
    readonly_fields = ["version", "created_at", "updated_at"]


@admin.register(EmailSend)
class EmailSendAdmin(admin.ModelAdmin):
    list_display = [
        "to_email",
        "category",
        "subject",
        "status",
        "attempts",
        "created_at",
        "sent_at",
    ]
    list_filter = ["status", "category", "template"]
    search_fields = ["to_email", "subject", "provider_message_id", "user__email"]
    date_hierarchy = "created_at"
    list_select_related = ["template"]
    exclude = ["context"]
    raw_id_fields = ["user", "template"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(EmailWebhook)
class EmailWebhookAdmin(admin.ModelAdmin):
    list_display = ["provider", "event_type", "event_id", "send", "received_at", "processed_at"]
    list_filter = ["provider", "event_type"]
    search_fields = ["event_id", "send__to_email"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(EmailPreference)
class EmailPreferenceAdmin(admin.ModelAdmin):
    list_display = ["user", "category", "subscribed", "updated_at"]
    list_filter = ["category", "subscribed"]
    search_fields = ["user__email"]
    raw_id_fields = ["user"]
