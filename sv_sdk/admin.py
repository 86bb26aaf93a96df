"""The parts of the admin that span apps: the user page's roles and emails, and the dashboard.

auth_app's UserAdmin knows identities and their audit trail; this subclass adds
what needs the other apps (granting roles, recent emails, verification emails,
onboarding and offboarding through sv_sdk.flows) and replaces it on the site.
"""

from datetime import timedelta
from urllib.parse import urlencode

import django.contrib.auth.admin  # noqa: F401 (registers Group, removed below)
from django import forms
from django.contrib import admin, messages
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from audit_app.models import AuditLog
from auth_app.admin import UserAdmin, html_table
from auth_app.models import Session, User
from email_app.models import EmailSend
from permissions_app import selectors as permission_selectors
from permissions_app.models import Role
from permissions_app.services import permission_cache_refresh, role_grant
from sv_sdk import flows
from sv_sdk.errors import ApplicationError

RECENT = 10


def _iso(moment) -> str:
    return moment.replace(microsecond=0).isoformat()


def _changelist(model, **params) -> str:
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    return f"{url}?{urlencode(params)}" if params else url


class GrantRoleForm(forms.Form):
    role = forms.ModelChoiceField(queryset=Role.objects.none())
    expires_at = forms.DateTimeField(
        required=False,
        label="Expires at (UTC)",
        help_text="Leave empty for an assignment without end. Format: 2030-01-31 18:00.",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"],
    )

    def __init__(self, *args, actor, **kwargs):
        super().__init__(*args, **kwargs)
        # Nobody hands out permissions they do not hold themselves (as in the API).
        grantable = [
            role.pk
            for role in Role.objects.all()
            if permission_selectors.user_holds_all(actor, role.permissions)
        ]
        self.fields["role"].queryset = Role.objects.filter(pk__in=grantable)

    def clean_expires_at(self):
        expires_at = self.cleaned_data.get("expires_at")
        if expires_at is not None and expires_at <= timezone.now():
            raise forms.ValidationError("The expiry must be in the future.")
        return expires_at


class OperatorUserAdmin(UserAdmin):
    actions = [*UserAdmin.actions, "resend_verification", "grant_role"]
    readonly_fields = [*UserAdmin.readonly_fields, "recent_emails"]

    def activity_fields(self, request):
        fields = super().activity_fields(request)
        if request.user.has_perm("email_app.view_emailsend"):
            fields = [*fields, "recent_emails"]
        return fields

    def get_actions(self, request):
        actions = super().get_actions(request)
        # A user is removed through user_offboard, one at a time (see delete_view).
        actions.pop("delete_selected", None)
        return actions

    @admin.display(description="Recent emails")
    def recent_emails(self, user):
        sends = EmailSend.objects.filter(user=user).order_by("-created_at")[:RECENT]
        rows = [
            (
                format_html(
                    '<a href="{}">{}</a>',
                    reverse("admin:email_app_emailsend_change", args=[send.pk]),
                    f"{send.created_at:%Y-%m-%d %H:%M:%S}",
                ),
                send.subject,
                send.category,
                send.status,
            )
            for send in sends
        ]
        return html_table(
            ["Queued", "Subject", "Category", "Status"],
            rows,
            empty="No emails.",
            more_url=_changelist(EmailSend, user__exact=user.pk),
            more_label="All emails of this user",
        )

    # Writes --------------------------------------------------------------------

    def user_change(self, request, obj, form):
        user = super().user_change(request, obj, form)
        if "is_superuser" in form.changed_data:
            # A superuser holds `*`: the cache row follows in the same transaction.
            permission_cache_refresh(user_ids=[user.pk])
        return user

    def delete_view(self, request, object_id, extra_context=None):
        # user_offboard is a durable transaction, which cannot nest in the admin's.
        return self._delete_view(request, object_id, extra_context)

    def get_deleted_objects(self, objs, request):
        # Sessions, assignments and the cache row go with the user (user_offboard),
        # whether or not this staff user may delete such rows one by one.
        deleted, counts, _perms_needed, protected = super().get_deleted_objects(objs, request)
        return deleted, counts, set(), protected

    def delete_model(self, request, obj):
        flows.user_offboard(user=obj, actor=request.user)

    def has_assign_roles_permission(self, request):
        return permission_selectors.user_has_permission(request.user, "roles:assign")

    @admin.action(description="Resend the verification email", permissions=["change"])
    def resend_verification(self, request, queryset):
        queued = 0
        for user in queryset:
            if user.is_active and not user.email_verified:
                queued += flows.verification_email_resend(email=user.email)
        skipped = len(queryset) - queued
        self.message_user(request, f"Queued {queued} verification email(s).", messages.SUCCESS)
        if skipped:
            self.message_user(
                request,
                f"Skipped {skipped} user(s): already verified, deactivated, or at the daily"
                " cap of requested mail.",
                messages.WARNING,
            )

    @admin.action(description="Grant a role to the selected users", permissions=["assign_roles"])
    def grant_role(self, request, queryset):
        data = request.POST if "apply" in request.POST else None
        form = GrantRoleForm(data, actor=request.user)
        if form.is_valid():
            role, expires_at = form.cleaned_data["role"], form.cleaned_data["expires_at"]
            try:
                with transaction.atomic():
                    for user in queryset:
                        role_grant(
                            user=user, role=role, granted_by=request.user, expires_at=expires_at
                        )
            except ApplicationError as exc:
                self.message_user(request, exc.detail, messages.ERROR)
                return None
            self.message_user(
                request, f"Granted {role} to {len(queryset)} user(s).", messages.SUCCESS
            )
            return None
        return self.action_form_page(
            request, queryset, form, action="grant_role", title="Grant a role", submit="Grant"
        )


admin.site.unregister(User)
admin.site.register(User, OperatorUserAdmin)
# Roles replace Django's groups, which this user model does not have: the page would mislead.
admin.site.unregister(Group)


# The dashboard on the admin index ----------------------------------------------------------


def dashboard(request) -> dict:
    """The index page's figures, each section only for staff who may see its list.

    A handful of aggregate queries, each served by an index on created_at,
    expires_at or (event_type, occurred_at).
    """
    has_perm = request.user.has_perm
    now = timezone.now()
    day, week = now - timedelta(days=1), now - timedelta(days=7)
    sections = []
    if has_perm("auth_app.view_user"):
        users = User.objects.aggregate(
            total=Count("pk"),
            day=Count("pk", filter=Q(created_at__gte=day)),
            week=Count("pk", filter=Q(created_at__gte=week)),
        )
        sections.append(
            {
                "title": "Users",
                "rows": [
                    ("All users", users["total"], _changelist(User)),
                    ("New in 24 h", users["day"], _changelist(User, created_at__gte=_iso(day))),
                    ("New in 7 days", users["week"], _changelist(User, created_at__gte=_iso(week))),
                ],
            }
        )
    if has_perm("auth_app.view_session") or has_perm("auth_app.delete_session"):
        active = Session.objects.filter(expires_at__gt=now).count()
        sections.append(
            {
                "title": "Sessions",
                "rows": [
                    ("Active sessions", active, _changelist(Session, expires_at__gt=_iso(now)))
                ],
            }
        )
    if has_perm("email_app.view_emailsend"):
        by_status = dict(
            EmailSend.objects.filter(created_at__gte=day)
            .order_by()
            .values_list("status")
            .annotate(n=Count("pk"))
        )
        sections.append(
            {
                "title": "Emails in the last 24 h",
                "rows": [
                    (
                        label,
                        by_status.get(status, 0),
                        _changelist(EmailSend, status__exact=status, created_at__gte=_iso(day)),
                    )
                    for status, label in EmailSend.Status.choices
                ],
            }
        )
    recent = []
    if has_perm("audit_app.view_auditlog"):
        security = AuditLog.objects.filter(
            occurred_at__gte=day, event_type__in=["auth.sign_in_failed", "auth.locked_out"]
        ).aggregate(
            failed=Count("pk", filter=Q(event_type="auth.sign_in_failed")),
            locked=Count("pk", filter=Q(event_type="auth.locked_out")),
        )
        sections.append(
            {
                "title": "Sign-ins in the last 24 h",
                "rows": [
                    (
                        "Failed sign-ins",
                        security["failed"],
                        _changelist(AuditLog, event_type="auth.sign_in_failed", within="1d"),
                    ),
                    (
                        "Lockouts",
                        security["locked"],
                        _changelist(AuditLog, event_type="auth.locked_out", within="1d"),
                    ),
                ],
            }
        )
        recent = [
            {
                "event": event,
                "url": reverse("admin:audit_app_auditlog_change", args=[event.pk]),
            }
            for event in AuditLog.objects.order_by("-occurred_at", "-id")[:RECENT]
        ]
    return {
        "sections": sections,
        "recent_events": recent,
        "audit_url": _changelist(AuditLog) if recent else "",
    }
