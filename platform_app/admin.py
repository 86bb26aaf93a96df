"""The user admin page composed from the apps, and the dashboard.

auth_app's UserAdmin knows identities and their audit trail; this subclass adds
what needs the other apps (the roles inline, granting roles, recent emails,
verification emails, onboarding and offboarding through platform_app.flows) and
is the one registered for the user model.
"""

from datetime import timedelta
from urllib.parse import urlencode

import django.contrib.auth.admin  # noqa: F401 (registers Group, removed below)
from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Count, Q
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect, JsonResponse
from django.urls import path, reverse
from django.utils import timezone

from audit_app.admin import AuditLogAdmin
from audit_app.models import AuditLog
from auth_app.admin import (
    AccountAdmin,
    BanDurationForm,
    UserAdmin,
    change_link_when,
    html_table,
    people_by_id,
    person,
)
from auth_app.mfa import with_mfa_since
from auth_app.models import Account, Session, User
from auth_app.oauth import providers
from email_app.models import EmailSend
from permissions_app import selectors as permission_selectors
from permissions_app.admin import UserRoleInline, refused_as_forbidden
from permissions_app.catalogue import PERMISSIONS
from permissions_app.models import Role
from permissions_app.services import role_grant
from platform_app import flows, trends
from platform_app.charts import legend
from platform_app.timeline import parse_before, user_timeline
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
        # Only the roles role_grant would let the actor grant (grant only what you hold).
        grantable = [
            role.pk
            for role in Role.objects.all()
            if permission_selectors.role_grantable_by(actor, role)
        ]
        self.fields["role"].queryset = Role.objects.filter(pk__in=grantable)


class OperatorUserAdmin(UserAdmin):
    inlines = [*UserAdmin.inlines, UserRoleInline]
    actions = [
        *UserAdmin.actions,
        "ban_users",
        "unban_users",
        "resend_verification",
        "grant_role",
        "reset_mfa",
    ]
    readonly_fields = [*UserAdmin.readonly_fields, "recent_emails"]

    def activity_fields(self, request):
        fields = super().activity_fields(request)
        if request.user.has_perm("email_app.view_emailsend"):
            fields = [*fields, "recent_emails"]
        return fields

    change_form_template = "admin/sv_sdk/user_change_form.html"

    # One page per person ---------------------------------------------------------

    def get_urls(self):
        return [
            path("find/", self.admin_site.admin_view(self.find_view), name="auth_app_user_find"),
            path(
                "<path:object_id>/export-data/",
                self.admin_site.admin_view(self.export_data_view),
                name="auth_app_user_export_data",
            ),
            *super().get_urls(),
        ]

    def find_view(self, request):
        """The header's email box: the person's page, or the list searched for the text."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        term = request.GET.get("person", "").strip()
        found = list(User.objects.with_email(term).values_list("pk", flat=True)) if term else []
        if len(found) == 1:
            return HttpResponseRedirect(reverse("admin:auth_app_user_change", args=found))
        return HttpResponseRedirect(_changelist(User, q=term) if term else _changelist(User))

    def has_export_data_permission(self, request) -> bool:
        return request.user.has_perm("auth_app.export_user")

    def export_data_view(self, request, object_id):
        """POST: the person's rows from the four schemas as one JSON file (audited)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_export_data_permission(request):
            raise PermissionDenied
        user = self.get_object(request, unquote(object_id))
        if user is None:
            raise Http404("No such user.")
        data = flows.user_data_export(user=user, actor=request.user)
        response = JsonResponse(data, encoder=DjangoJSONEncoder, json_dumps_params={"indent": 2})
        response["Content-Disposition"] = f'attachment; filename="user-{user.pk}.json"'
        return response

    def change_view(self, request, object_id, form_url="", extra_context=None):
        user = self.get_object(request, unquote(object_id))
        if user is None or request.method != "GET":
            return super().change_view(request, object_id, form_url, extra_context)
        has_perm = request.user.has_perm
        before = parse_before(request.GET.get("before"))
        context = {
            "timeline": user_timeline(
                user,
                before=before,
                audit=has_perm("audit_app.view_auditlog"),
                emails=has_perm("email_app.view_emailsend"),
                sessions=has_perm("auth_app.view_session"),
            ),
            "timeline_newest_url": "?" if before else "",
            "can_export_data": self.has_export_data_permission(request),
            "export_data_url": reverse("admin:auth_app_user_export_data", args=[user.pk]),
            "permission_sources": (
                [
                    (permission, PERMISSIONS.get(permission, "every permission it covers"), roles)
                    for permission, roles in permission_selectors.permission_sources(user).items()
                ]
                if has_perm("permissions_app.view_userrole")
                else None
            ),
        }
        return super().change_view(
            request, object_id, form_url, {**context, **(extra_context or {})}
        )

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
                change_link_when(send, send.created_at),
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

    def save_model(self, request, obj, form, change):
        if change:
            self.user_change(request, obj, form)
            return
        try:
            created = flows.user_onboard(
                email=form.cleaned_data["email"],
                password=form.cleaned_data.get("password"),
                name=form.cleaned_data.get("name", ""),
                is_staff=form.cleaned_data.get("is_staff", False),
                is_superuser=form.cleaned_data.get("is_superuser", False),
                actor=request.user,
            )
        except ApplicationError as exc:
            # Only a race can get here (the form checked the email): say so, no 500.
            raise PermissionDenied(exc.detail) from exc
        obj.pk = created.pk
        obj._state.adding = False
        obj._state.db = created._state.db

    def has_change_permission(self, request, obj=None):
        # The privilege rule: a user you may not act on is shown read-only (and a
        # POST is refused); the flows refuse it too, whatever the path.
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or permission_selectors.user_may_act_on(request.user, obj))

    def has_delete_permission(self, request, obj=None):
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or permission_selectors.user_may_act_on(request.user, obj))

    def user_change(self, request, obj, form) -> User:
        """Apply the form's changes through flows.user_update, as the API does."""
        current = User.objects.get(pk=obj.pk)
        changes = {field: getattr(obj, field) for field in form.changed_data}
        with refused_as_forbidden():
            return flows.user_update(user=current, actor=request.user, **changes)

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

    @admin.action(
        description="Ban the selected users (ends their sessions)", permissions=["change"]
    )
    def ban_users(self, request, queryset):
        form = BanDurationForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            until = form.until()
            if not self._each_in_one_transaction(
                request,
                queryset,
                lambda user: flows.user_ban(user=user, until=until, actor=request.user),
            ):
                return None
            self.message_user(request, f"Banned {len(queryset)} user(s).", messages.SUCCESS)
            return None
        return self.action_form_page(
            request,
            queryset,
            form,
            action="ban_users",
            title="Ban users",
            submit="Ban",
            note="Their sessions end at once; they cannot sign in until the ban ends.",
        )

    @admin.action(description="Lift the ban of the selected users", permissions=["change"])
    def unban_users(self, request, queryset):
        if self._each_in_one_transaction(
            request, queryset, lambda user: flows.user_unban(user=user, actor=request.user)
        ):
            self.message_user(
                request, f"Lifted the ban of {len(queryset)} user(s).", messages.SUCCESS
            )

    def _each_in_one_transaction(self, request, queryset, write) -> bool:
        """Apply `write` to every selected user, all or none; say why on a refusal."""
        try:
            with transaction.atomic():
                for user in queryset:
                    write(user)
        except ApplicationError as exc:
            reasons = " ".join([exc.detail, *(m for ms in exc.errors.values() for m in ms)])
            self.message_user(request, f"Nothing was changed: {reasons}", messages.ERROR)
            return False
        return True

    @admin.action(
        description="Reset the second factors of the selected users (ends their sessions)",
        permissions=["change"],
    )
    def reset_mfa(self, request, queryset):
        ended = []
        if self._each_in_one_transaction(
            request,
            queryset,
            lambda user: ended.append(flows.user_mfa_reset(user=user, actor=request.user)),
        ):
            self.message_user(
                request,
                f"Reset the second factors of {len(queryset)} user(s); "
                f"{sum(ended)} session(s) ended.",
                messages.SUCCESS,
            )

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
            if not self._each_in_one_transaction(
                request,
                queryset,
                lambda user: role_grant(
                    user=user, role=role, granted_by=request.user, expires_at=expires_at
                ),
            ):
                return None
            self.message_user(
                request, f"Granted {role} to {len(queryset)} user(s).", messages.SUCCESS
            )
            return None
        return self.action_form_page(
            request, queryset, form, action="grant_role", title="Grant a role", submit="Grant"
        )


class OperatorAuditLogAdmin(AuditLogAdmin):
    """The audit log with people by name: actors and users shown, and searched, by email."""

    list_display = [
        "id",
        "occurred_at",
        "event_type",
        "actor",
        "subject",
        "target_type",
        "target_id",
        "ip_address",
    ]
    search_help_text = (
        "A user's email address (their events, as user or actor), or the exact id of a row,"
        " actor, user or request, or an event type."
    )

    def prepare_page(self, request, rows):
        # Audit rows have no foreign key (the log outlives users): one query per page.
        people = people_by_id(id_ for row in rows for id_ in (row.actor_id, row.user_id))
        link = request.user.has_perm("auth_app.view_user")
        for row in rows:
            row.actor, row.subject = (
                person(row.actor_id, people, link=link),
                person(row.user_id, people, link=link) if row.user_id else "-",
            )

    @admin.display(description="Actor")
    def actor(self, row):
        return row.actor

    @admin.display(description="User")
    def subject(self, row):
        return row.subject

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if "@" not in term:
            return super().get_search_results(request, queryset, search_term)
        # Through the user (the lower(email) index), then the (user_id|actor_id, time) indexes.
        ids = list(User.objects.with_email(term).values_list("pk", flat=True))
        return queryset.filter(Q(user_id__in=ids) | Q(actor_id__in=ids)), False


admin.site.register(User, OperatorUserAdmin)
admin.site.unregister(AuditLog)
admin.site.register(AuditLog, OperatorAuditLogAdmin)


class OperatorAccountAdmin(AccountAdmin):
    actions = ["unlink_selected"]

    def has_unlink_permission(self, request):
        return request.user.has_perm("auth_app.delete_account")

    @admin.action(description="Unlink the selected accounts", permissions=["unlink"])
    def unlink_selected(self, request, queryset):
        unlinked = 0
        for account in queryset.select_related("user"):
            try:
                flows.account_unlink(account=account, actor=request.user)
            except ApplicationError as exc:
                # Each unlink is its own transaction: say which one was refused, and why.
                self.message_user(request, f"{account}: {exc.detail}", messages.ERROR)
            else:
                unlinked += 1
        if unlinked:
            self.message_user(request, f"Unlinked {unlinked} account(s).", messages.SUCCESS)


admin.site.unregister(Account)
admin.site.register(Account, OperatorAccountAdmin)
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
    if has_perm("auth_app.view_user"):
        staff_users = User.objects.filter(is_staff=True)
        with_mfa = with_mfa_since(staff_users).filter(mfa_since__isnull=False).count()
        without_mfa = staff_users.count() - with_mfa
        sections.append(
            {
                "title": "Staff second factors",
                "rows": [
                    ("Staff with MFA", with_mfa, _changelist(User, is_staff__exact=1, mfa="on")),
                    (
                        "Staff without MFA",
                        without_mfa,
                        _changelist(User, is_staff__exact=1, mfa="off"),
                    ),
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
    if has_perm("auth_app.view_account"):
        linked = dict(Account.objects.order_by().values_list("provider_id").annotate(n=Count("pk")))
        sections.append(
            {
                "title": "Sign-in providers: linked accounts",
                "rows": [
                    (
                        f"{p.name} ({p.id}): {'enabled' if p.enabled else 'disabled'}"
                        + (", trusted for linking" if p.trusted_for_linking else ""),
                        linked.get(p.id, 0),
                        _changelist(Account, provider_id__exact=p.id),
                    )
                    for p in providers()
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
        events = list(AuditLog.objects.order_by("-id")[:RECENT])
        people = people_by_id(id_ for event in events for id_ in (event.actor_id, event.user_id))
        link = has_perm("auth_app.view_user")
        recent = [
            {
                "event": event,
                "url": reverse("admin:audit_app_auditlog_change", args=[event.pk]),
                "actor": person(event.actor_id, people, link=link),
                "user": person(event.user_id, people, link=link) if event.user_id else "-",
            }
            for event in events
        ]
    return {
        "figures": [
            {"figure": figure, "svg": figure.svg(), "legend": legend(figure)}
            for figure in _figures(has_perm, now)
        ],
        "sections": sections,
        "recent_events": recent,
        "audit_url": _changelist(AuditLog) if recent else "",
    }


def _figures(has_perm, now) -> list:
    """The trends this staff user may see, each linked to the list behind it."""
    figures = []
    if has_perm("auth_app.view_user"):
        figures.append(trends.sign_ups(now, _changelist))
    if has_perm("audit_app.view_auditlog"):
        figures.append(trends.sign_ins(now, _changelist))
    if has_perm("email_app.view_emailsend"):
        figures.append(trends.email_funnel(now, _changelist))
    if has_perm("auth_app.view_session") or has_perm("auth_app.delete_session"):
        figures.append(trends.active_sessions(now, _changelist))
    if has_perm("auth_app.view_user"):
        figures.append(trends.staff_without_mfa(now, _changelist))
    return figures
