"""Admin pages for templates (with a preview), the outbox, webhook events and preferences."""

from django import forms
from django.contrib import admin, messages
from django.db.models import BooleanField, ExpressionWrapper, Q
from django.http import JsonResponse
from django.template import TemplateSyntaxError
from django.urls import path
from django.utils.html import format_html, format_html_join

from auth_app.admin import user_link
from auth_app.models import User
from sv_sdk.admin_mixins import KeysetAdminMixin, ReadOnlyAdminMixin, WithinFilter
from sv_sdk.errors import ApplicationError

from . import services
from .models import (
    ESSENTIAL_CATEGORIES,
    EmailPreference,
    EmailSend,
    EmailSuppression,
    EmailTemplate,
    EmailWebhook,
)
from .rendering import render_preview, variables
from .selectors import send_safe_copy


class EmailTemplateForm(forms.ModelForm):
    actor = None  # the staff user, set by EmailTemplateAdmin.get_form

    class Meta:
        model = EmailTemplate
        fields = ["key", "locale", "subject", "text_body", "html_body", "description", "is_active"]

    def clean(self):
        cleaned = super().clean()
        key = cleaned.get("key") if self.instance._state.adding else self.instance.key
        sources = {
            field: cleaned.get(field, getattr(self.instance, field))
            for field in ("subject", "text_body", "html_body")
        }
        try:
            # The services' own checks, so the save below cannot fail on them.
            services.template_editable(key=key or "", actor=self.actor)
            services.template_sources_check(key=key or "", sources=sources)
        except ApplicationError as exc:
            for field, errors in (exc.errors or {None: [exc.detail]}).items():
                self.add_error(field if field in self.fields else None, errors)
        return cleaned


class EmailPreferenceForm(forms.ModelForm):
    class Meta:
        model = EmailPreference
        fields = ["user", "category", "subscribed"]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("category") in ESSENTIAL_CATEGORIES and not cleaned.get("subscribed"):
            self.add_error("subscribed", "Security and account emails are always sent.")
        return cleaned


def _preview(subject: str, text_body: str, html_body: str) -> dict:
    """Render with each variable shown as [name]; raises TemplateSyntaxError or ApplicationError."""
    names = variables(subject, text_body, html_body)
    (subject, text, html), _missing = render_preview(
        subject=subject,
        text_body=text_body,
        html_body=html_body,
        context={name: f"[{name}]" for name in names},
    )
    return {"subject": subject, "text": text, "html": html, "variables": names, "error": ""}


@admin.register(EmailTemplate)
class EmailTemplateAdmin(admin.ModelAdmin):
    form = EmailTemplateForm
    list_display = ["key", "locale", "subject", "version", "is_active", "updated_at"]
    list_filter = ["locale", "is_active"]
    search_fields = ["key", "subject", "description"]
    readonly_fields = ["version", "created_at", "updated_at", "variables", "preview"]

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        form.actor = request.user
        return form

    def _editable(self, request, obj) -> bool:
        try:
            services.template_editable(key=obj.key if obj else "", actor=request.user)
        except ApplicationError:
            return False
        return True

    def has_change_permission(self, request, obj=None):
        return self._editable(request, obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._editable(request, obj) and super().has_delete_permission(request, obj)

    def get_readonly_fields(self, request, obj=None):
        # Key and locale name the template; they are fixed once it exists.
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "key", "locale"] if obj else fields

    class Media:
        # Re-renders the preview below as the subject and bodies are edited.
        js = ["email_app/live_preview.js"]

    def get_urls(self):
        return [
            path(
                "live-preview/",
                self.admin_site.admin_view(self.live_preview),
                name="email_app_emailtemplate_live_preview",
            ),
            *super().get_urls(),
        ]

    def live_preview(self, request):
        """Render the form's unsaved subject and bodies; JSON for the change page's script."""
        if request.method != "POST":
            return JsonResponse({"error": "POST the template's fields"}, status=405)
        if not self.has_view_permission(request):
            return JsonResponse({"error": "permission denied"}, status=403)
        try:
            preview = _preview(
                request.POST.get("subject", ""),
                request.POST.get("text_body", ""),
                request.POST.get("html_body", ""),
            )
        except TemplateSyntaxError as exc:
            return JsonResponse({"error": f"Template syntax error: {exc}"}, status=400)
        except ApplicationError as exc:
            return JsonResponse({"error": exc.detail}, status=400)
        return JsonResponse(preview)

    @admin.display(description="Variables")
    def variables(self, obj):
        if obj is None or obj.pk is None:
            return format_html('<span id="sv-preview-variables">-</span>')
        try:
            names = variables(obj.subject, obj.text_body, obj.html_body)
        except TemplateSyntaxError as exc:
            return f"Template syntax error: {exc}"
        return format_html(
            '<span id="sv-preview-variables">{}</span>', ", ".join(names) or "(none)"
        )

    @admin.display(description="Preview")
    def preview(self, obj):
        """The template rendered with each variable shown as [name]; updated while editing."""
        rendered = {"subject": "", "text": "", "html": "", "error": ""}
        if obj is not None and obj.pk is not None:
            try:
                rendered.update(_preview(obj.subject, obj.text_body, obj.html_body))
            except TemplateSyntaxError as exc:
                rendered["error"] = f"Template syntax error: {exc}"
            except ApplicationError as exc:
                rendered["error"] = exc.detail
        # The HTML body goes into a sandboxed iframe: its styles and any script stay inside.
        return format_html(
            '<p id="sv-preview-error" style="color:#ba2121;">{}</p>'
            '<p><strong>Subject:</strong> <span id="sv-preview-subject">{}</span></p>'
            '<iframe id="sv-preview-html" sandbox srcdoc="{}" style="width:100%;max-width:720px;'
            'height:420px;border:1px solid #ccc;background:#fff;"></iframe>'
            '<pre id="sv-preview-text" style="white-space:pre-wrap;max-width:720px;">{}</pre>',
            rendered["error"],
            rendered["subject"],
            rendered["html"],
            rendered["text"],
        )

    def save_model(self, request, obj, form, change):
        # Through the services, so the version bumps and the change is audited.
        # The form has checked the syntax, and the key and locale's uniqueness.
        if change:
            changes = {f: form.cleaned_data[f] for f in form.changed_data if f in form.cleaned_data}
            services.template_update(
                template=EmailTemplate.objects.get(pk=obj.pk), actor=request.user, **changes
            )
        else:
            created = services.template_create(
                key=obj.key,
                locale=obj.locale,
                subject=obj.subject,
                text_body=obj.text_body,
                html_body=obj.html_body,
                description=obj.description,
                is_active=obj.is_active,
                actor=request.user,
            )
            obj.pk = created.pk


class CreatedFilter(WithinFilter):
    title = "queued"
    field = "created_at"


@admin.register(EmailSend)
class EmailSendAdmin(KeysetAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "to_email",
        "person",
        "category",
        "subject",
        "status",
        "attempts",
        "created_at",
        "sent_at",
    ]
    list_filter = ["status", "category", "template", CreatedFilter]
    search_fields = ["to_email", "provider_message_id", "=id"]
    search_help_text = "A user's email address, or the exact id or provider message id of a send."
    list_select_related = ["template", "user"]
    # Shown through send_safe_copy; the encrypted links never.
    exclude = ["context", "text_body", "html_body", "links"]
    readonly_fields = ["safe_text_body", "safe_html_body", "events"]
    raw_id_fields = ["user", "template"]
    actions = ["resend"]
    deletable = True
    export_fields = (
        "id",
        "created_at",
        "user_id",
        "to_email",
        "category",
        "subject",
        "status",
        "attempts",
        "provider",
        "provider_message_id",
        "sent_at",
        "delivered_at",
        "opened_at",
        "clicked_at",
    )
    export_permission = "email:read"

    def get_search_results(self, request, queryset, search_term):
        # Each match served by an index: the user's by their email (lower(email)),
        # a send by id or provider message id; never a LIKE over the outbox.
        term = search_term.strip()
        if not term:
            return queryset, False
        match = Q(pk=term[:36]) | Q(provider_message_id=term)
        if "@" in term:
            match |= Q(user__in=User.objects.with_email(term).values("pk"))
        return queryset.filter(match), False

    @admin.display(description="User")
    def person(self, send):
        return user_link(send.user)

    @admin.display(description="Text body")
    def safe_text_body(self, obj):
        return format_html(
            "<pre style='white-space:pre-wrap'>{}</pre>", send_safe_copy(obj)["text_body"]
        )

    @admin.display(description="HTML body")
    def safe_html_body(self, obj):
        html = send_safe_copy(obj)["html_body"]
        if not html:
            return "-"
        return format_html(
            '<iframe sandbox srcdoc="{}" style="width:100%;max-width:720px;height:420px;'
            'border:1px solid #ccc;background:#fff;"></iframe>',
            html,
        )

    @admin.display(description="Provider events")
    def events(self, obj):
        rows = obj.webhooks.order_by("received_at").values_list(
            "received_at", "provider", "event_type", "reason"
        )
        return format_html_join("", "<div>{} {} {} <em>{}</em></div>", rows) or "-"

    @admin.action(description="Resend the selected emails")
    def resend(self, request, queryset):
        done, refused = 0, 0
        for send in queryset.select_related("template"):
            try:
                services.email_resend(send=send, actor=request.user)
                done += 1
            except ApplicationError:
                refused += 1
        if done:
            self.message_user(request, f"Queued {done} email(s) again.", messages.SUCCESS)
        if refused:
            self.message_user(
                request,
                f"{refused} email(s) were not resent: security email, or a one-time link.",
                messages.WARNING,
            )


@admin.register(EmailWebhook)
class EmailWebhookAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "provider",
        "event_type",
        "reason",
        "event_id",
        "send",
        "received_at",
        "processed_at",
    ]
    list_filter = ["provider", "event_type"]
    search_fields = ["event_id", "reason", "send__to_email", "=send__id"]
    raw_id_fields = ["send"]
    deletable = True


@admin.register(EmailSuppression)
class EmailSuppressionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Suppressed addresses, read-only but for lifting (through the service, audited).

    Never deleted: a lifted row is the record of the lifting.
    """

    list_display = [
        "address",
        "reason",
        "in_force",
        "detail",
        "provider",
        "suppressed_at",
        "expires_at",
        "lifted_at",
        "lifted_by",
    ]
    list_filter = ["reason", "provider"]
    search_fields = ["address", "detail"]
    raw_id_fields = ["send", "lifted_by"]
    actions = ["lift"]

    def has_lift_permission(self, request):
        return request.user.has_perm("email_app.change_emailsuppression")

    def get_queryset(self, request):
        held = ExpressionWrapper(services.suppression_in_force(), output_field=BooleanField())
        return super().get_queryset(request).annotate(held=held)

    @admin.display(boolean=True, description="In force", ordering="held")
    def in_force(self, obj):
        return obj.held

    @admin.action(description="Lift the selected suppressions", permissions=["lift"])
    def lift(self, request, queryset):
        for row in queryset:
            services.suppression_lift(suppression=row, actor=request.user)
        self.message_user(
            request,
            f"Lifted {len(queryset)} suppression(s): mail goes there again.",
            messages.SUCCESS,
        )


@admin.register(EmailPreference)
class EmailPreferenceAdmin(admin.ModelAdmin):
    form = EmailPreferenceForm
    list_display = ["user", "category", "subscribed", "updated_at"]
    list_filter = ["category", "subscribed"]
    search_fields = ["user__email"]
    raw_id_fields = ["user"]

    def save_model(self, request, obj, form, change):
        # Through the service: audited, and essential categories stay subscribed.
        preference = services.preference_set(
            user=obj.user,
            category=obj.category,
            subscribed=obj.subscribed,
            actor=request.user,
            source="admin",
        )
        obj.pk = preference.pk
