"""Admin pages for users, sessions, accounts and verifications.

The user page is the operators' console for one user: profile, verification and
ban state, active sessions (revocable), linked accounts and recent audit events.
Writes go through `auth_app.services` (audited); what needs the other apps
(roles, emails, the flows that change, ban, onboard and offboard users under the
privilege rule) is added in platform_app/admin.py.
"""

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import password_validation
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from audit_app.models import AuditLog
from sv_sdk.admin_mixins import ReadOnlyAdminMixin
from sv_sdk.errors import ValidationFailed

from . import mfa, services
from .addresses import email_normalize
from .models import (
    Account,
    Passkey,
    PasskeyChallenge,
    RecoveryCode,
    Session,
    TwoFactor,
    User,
    Verification,
)

RECENT = 10
# A ban "until further notice" ends this far ahead.
PERMANENT_BAN = timedelta(days=365 * 100)


def html_table(headers, rows, *, empty: str, more_url: str = "", more_label: str = ""):
    """A small read-only table for the change page; every cell is escaped."""
    link = format_html('<p><a href="{}">{}</a></p>', more_url, more_label) if more_url else ""
    if not rows:
        return format_html("<p>{}</p>{}", empty, link)
    head = format_html_join("", "<th>{}</th>", ((h,) for h in headers))
    body = format_html_join(
        "",
        "<tr>{}</tr>",
        ((format_html_join("", "<td>{}</td>", ((cell,) for cell in row)),) for row in rows),
    )
    return format_html(
        '<table class="sv-recent"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>{}',
        head,
        body,
        link,
    )


def change_link_when(obj, when) -> str:
    """A row of a small table: its time, to the second, linked to the row's admin page."""
    meta = obj._meta
    url = reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, f"{when:%Y-%m-%d %H:%M:%S}")


def user_link(user, *, missing: str = "deleted user", link: bool = True):
    """A user as operators know them, "Name <email>" (or the email), linked to their page.

    `link=False` for staff who may not open user pages (an auditor reading the log).
    """
    if user is None:
        return missing
    label = f"{user.name} <{user.email}>" if user.name else user.email
    if not link:
        return label
    return format_html(
        '<a href="{}" class="sv-person">{}</a>',
        reverse("admin:auth_app_user_change", args=[user.pk]),
        label,
    )


def people_by_id(ids) -> dict[str, User]:
    """The users behind `ids` (a page's actor and user ids), in one query."""
    wanted = {user_id for user_id in ids if user_id}
    if not wanted:
        return {}
    return {user.pk: user for user in User.objects.filter(pk__in=wanted).only("email", "name")}


def person(user_id: str | None, people: dict[str, User], *, link: bool = True):
    """The user behind an id that has no foreign key (audit rows): "system" for none."""
    if not user_id:
        return "system"
    return user_link(people.get(user_id), link=link)


def can_revoke_sessions(request) -> bool:
    # Revoking is deleting a session row; the role backend maps it to sessions:revoke.
    return request.user.has_perm("auth_app.delete_session")


def can_read_audit(request) -> bool:
    return request.user.has_perm("audit_app.view_auditlog")


def normalized_email(email: str) -> str:
    """The address in its normal form, or the form error saying why it has none."""
    try:
        return email_normalize(email)
    except ValidationFailed as exc:
        raise forms.ValidationError(exc.errors["email"]) from None


def name_cleaned(name: str) -> str:
    """The service's rule on names, as a form error."""
    try:
        return services.user_name_clean(name)
    except ValidationFailed as exc:
        raise forms.ValidationError(exc.errors["name"]) from None


class UserAddForm(forms.ModelForm):
    password = forms.CharField(
        widget=forms.PasswordInput,
        required=False,
        help_text="Leave empty for a user who signs in only through a linked account.",
    )

    class Meta:
        model = User
        fields = ["email", "name", "is_staff", "is_superuser"]

    def clean_email(self):
        email = normalized_email(self.cleaned_data["email"])
        if User.objects.with_email(email).exists():
            raise forms.ValidationError("A user with this email address already exists.")
        return email

    def clean_name(self):
        return name_cleaned(self.cleaned_data["name"])

    def clean_password(self):
        password = self.cleaned_data.get("password")
        if password:
            password_validation.validate_password(
                password, User(email=self.cleaned_data.get("email", ""))
            )
        return password or None

    def validate_unique(self):
        # Uniqueness ignoring case: clean_email, and user_onboard inside its transaction.
        pass


class UserChangeForm(forms.ModelForm):
    image = forms.URLField(max_length=2000, required=False, assume_scheme="https")

    class Meta:
        model = User
        fields = [
            "email",
            "name",
            "image",
            "email_verified",
            "is_active",
            "is_staff",
            "is_superuser",
        ]

    def clean_email(self):
        email = normalized_email(self.cleaned_data["email"])
        if User.objects.with_email(email).exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError("A user with this email address already exists.")
        return email

    def clean_name(self):
        return name_cleaned(self.cleaned_data["name"])

    def validate_unique(self):
        pass


class BanDurationForm(forms.Form):
    DURATIONS = {
        "1h": ("1 hour", timedelta(hours=1)),
        "1d": ("24 hours", timedelta(days=1)),
        "7d": ("7 days", timedelta(days=7)),
        "30d": ("30 days", timedelta(days=30)),
        "permanent": ("Until further notice", PERMANENT_BAN),
    }
    duration = forms.ChoiceField(
        choices=[(key, label) for key, (label, _delta) in DURATIONS.items()], initial="1d"
    )

    def until(self):
        return timezone.now() + self.DURATIONS[self.cleaned_data["duration"]][1]


class BannedFilter(admin.SimpleListFilter):
    title = "banned"
    parameter_name = "banned"

    def lookups(self, request, model_admin):
        return [("yes", "Banned now"), ("no", "Not banned")]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "yes":
            return queryset.filter(banned_until__gt=now)
        if self.value() == "no":
            return queryset.exclude(banned_until__gt=now)
        return queryset


class MfaFilter(admin.SimpleListFilter):
    title = "second factor"
    parameter_name = "mfa"

    def lookups(self, request, model_admin):
        return [("on", "With a second factor"), ("off", "Without")]

    def queryset(self, request, queryset):
        enrolled = mfa.with_mfa_since(queryset).filter(mfa_since__isnull=False).values("pk")
        if self.value() == "on":
            return queryset.filter(pk__in=enrolled)
        if self.value() == "off":
            return queryset.exclude(pk__in=enrolled)
        return queryset


class SessionInline(ReadOnlyAdminMixin, admin.TabularInline):
    """The user's live sessions (admin and API alike), read-only, each with a revoke button."""

    model = Session
    extra = 0
    verbose_name_plural = "active sessions"
    fields = ["created_at", "last_seen_at", "expires_at", "ip_address", "client"]
    readonly_fields = fields
    ordering = ["-last_seen_at"]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(expires_at__gt=timezone.now())

    def get_fields(self, request, obj=None):
        return [*self.fields, "revoke"] if can_revoke_sessions(request) else self.fields

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj)

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("auth_app.view_session") or can_revoke_sessions(request)

    @admin.display(description="User agent")
    def client(self, session):
        agent = session.user_agent or "-"
        return agent if len(agent) <= 80 else f"{agent[:77]}..."

    @admin.display(description="")
    def revoke(self, session):
        # A button of the page's own form (which carries the CSRF token), posting to
        # the revoke view instead of the save view.
        url = reverse("admin:auth_app_user_revoke_sessions", args=[session.user_id])
        return format_html(
            '<button type="submit" class="button" formaction="{}" formmethod="post"'
            ' name="session" value="{}">Revoke</button>',
            url,
            session.pk,
        )


class AccountInline(ReadOnlyAdminMixin, admin.TabularInline):
    """Linked external identities; the provider tokens are never shown."""

    model = Account
    extra = 0
    verbose_name_plural = "linked accounts"
    fields = [
        "provider_id",
        "account_id",
        "last_sign_in_at",
        "needs_reconsent",
        "access_token_expires_at",
        "created_at",
    ]
    readonly_fields = fields
    # The account's own page has the (audited) unlink action.
    show_change_link = True


class UserAdmin(admin.ModelAdmin):
    form = UserChangeForm
    list_display = [
        "email",
        "name",
        "email_verified",
        "is_active",
        "ban_state",
        "is_staff",
        "created_at",
    ]
    list_filter = [
        "email_verified",
        "is_active",
        "is_staff",
        "is_superuser",
        BannedFilter,
        MfaFilter,
    ]
    search_fields = ["email", "name", "=id"]
    inlines = [SessionInline, AccountInline]
    actions = ["revoke_all_sessions"]
    readonly_fields = [
        "id",
        "ban_state",
        "password_state",
        "last_login",
        "created_at",
        "updated_at",
        "session_count",
        "session_controls",
        "second_factors",
        "recent_audit_events",
    ]

    # Pages ---------------------------------------------------------------------

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            fields = ["email", "name", "password", "is_staff"]
            # Only a superuser makes superusers.
            fields += ["is_superuser"] if request.user.is_superuser else []
            return [(None, {"fields": fields})]
        fieldsets = [
            (None, {"fields": ["id", "email", "name", "image"]}),
            ("Verification and ban", {"fields": ["email_verified", "ban_state"]}),
            (
                "Access",
                {
                    "fields": [
                        "is_active",
                        "is_staff",
                        "is_superuser",
                        "password_state",
                        "second_factors",
                        "last_login",
                        "session_controls" if can_revoke_sessions(request) else "session_count",
                    ]
                },
            ),
        ]
        fieldsets += [("Activity", {"fields": self.activity_fields(request)})]
        fieldsets += [("Dates", {"fields": ["created_at", "updated_at"]})]
        return [fs for fs in fieldsets if fs[1]["fields"]]

    def activity_fields(self, request) -> list[str]:
        """The recent-activity panels this staff user may see."""
        return ["recent_audit_events"] if can_read_audit(request) else []

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = UserAddForm
        return super().get_form(request, obj, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        fields = list(super().get_readonly_fields(request, obj))
        # Only a superuser makes or unmakes superusers.
        return fields if request.user.is_superuser else [*fields, "is_superuser"]

    def get_inline_instances(self, request, obj=None):
        return [] if obj is None else super().get_inline_instances(request, obj)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if object_id is None and request.method == "POST":
            # user_onboard is a durable transaction of its own, which cannot nest in the
            # one the admin opens around saving: it is the whole transaction here.
            return self._changeform_view(request, object_id, form_url, extra_context)
        return super().changeform_view(request, object_id, form_url, extra_context)

    # Read-only panels ----------------------------------------------------------

    @admin.display(description="Banned")
    def ban_state(self, user):
        if user.banned_until and user.banned_until > timezone.now():
            if user.banned_until - timezone.now() > PERMANENT_BAN / 2:
                return "Banned until further notice"
            return f"Banned until {user.banned_until:%Y-%m-%d %H:%M} UTC"
        return "Not banned"

    @admin.display(description="Password")
    def password_state(self, user):
        # Never the hash: it is a secret too.
        return "Set" if user.has_usable_password() else "None (external sign-in only)"

    @admin.display(description="Second factors")
    def second_factors(self, user):
        # Names and dates only: never a secret, a code or a key.
        two_factor = TwoFactor.objects.filter(user=user).first()
        if two_factor is None:
            totp = "off"
        elif two_factor.confirmed_at is None:
            totp = "enrolment started, not confirmed"
        else:
            totp = f"on since {two_factor.confirmed_at:%Y-%m-%d}"
        rows = [("Authenticator app", totp)]
        rows += [
            (
                f"Passkey “{key.name}”",
                f"last used {key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "unused",
            )
            for key in user.passkeys.all()
        ]
        rows.append(("Recovery codes left", str(mfa.recovery_codes_left(user))))
        return html_table(["Factor", "State"], rows, empty="")

    @admin.display(description="Sessions")
    def session_count(self, user):
        count = user.sessions.filter(expires_at__gt=timezone.now()).count()
        return f"{count} active session{'s' if count != 1 else ''}"

    @admin.display(description="Sessions")
    def session_controls(self, user):
        text = self.session_count(user)
        if text.startswith("0 "):
            return text
        url = reverse("admin:auth_app_user_revoke_sessions", args=[user.pk])
        return format_html(
            '{} <button type="submit" class="button" formaction="{}" formmethod="post"'
            ' name="session" value="all">Revoke all sessions</button>',
            text,
            url,
        )

    @admin.display(description="Recent audit events")
    def recent_audit_events(self, user):
        events = list(
            AuditLog.objects.filter(user_id=user.pk).order_by("-occurred_at", "-id")[:RECENT]
        )
        people = people_by_id(event.actor_id for event in events)
        rows = [
            (
                change_link_when(event, event.occurred_at),
                event.event_type,
                person(event.actor_id, people),
                event.ip_address or "-",
            )
            for event in events
        ]
        url = reverse("admin:audit_app_auditlog_changelist") + f"?user_id={user.pk}"
        return html_table(
            ["When", "Event", "Actor", "IP"],
            rows,
            empty="No audit events.",
            more_url=url,
            more_label="All audit events of this user",
        )

    # Writes, through the services ----------------------------------------------
    # Saving a user (a change under the privilege rule, or onboarding a new one)
    # needs the other apps: the composed admin in platform_app/admin.py does it.

    def get_urls(self):
        view = self.admin_site.admin_view(self.revoke_sessions_view)
        return [
            path("<path:object_id>/revoke-sessions/", view, name="auth_app_user_revoke_sessions"),
            *super().get_urls(),
        ]

    def revoke_sessions_view(self, request, object_id):
        """POST `session=<id>` ends one session of the user, `session=all` every one."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not can_revoke_sessions(request):
            raise PermissionDenied
        user = self.get_object(request, unquote(object_id))
        if user is None:
            raise Http404("No such user.")
        which = request.POST.get("session", "")
        if which == "all":
            count = services.sessions_revoke_for_user(user=user, actor=request.user, reason="admin")
            self.message_user(request, f"Revoked {count} session(s) of {user}.", messages.SUCCESS)
        else:
            session = Session.objects.filter(user=user, pk=which[:36]).first()
            if session is None:
                self.message_user(request, "That session has already ended.", messages.WARNING)
            else:
                services.session_revoke(session=session, actor=request.user, reason="admin")
                self.message_user(request, "Revoked the session.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:auth_app_user_change", args=[user.pk]))

    # Changelist actions --------------------------------------------------------

    def has_revoke_sessions_permission(self, request):
        return can_revoke_sessions(request)

    @admin.action(
        description="Revoke all sessions of the selected users", permissions=["revoke_sessions"]
    )
    def revoke_all_sessions(self, request, queryset):
        total = 0
        for user in queryset:
            total += services.sessions_revoke_for_user(
                user=user, actor=request.user, reason="admin"
            )
        self.message_user(request, f"Revoked {total} session(s).", messages.SUCCESS)

    def action_form_page(self, request, queryset, form, *, action, title, submit, note=""):
        """The intermediate page of an action that needs input (a form, then "apply")."""
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.model._meta,
            "queryset": queryset,
            "form": form,
            "action": action,
            "submit": submit,
            "note": note,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/sv_sdk/action_form.html", context)


@admin.register(Session)
class SessionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "person", "created_at", "last_seen_at", "expires_at", "ip_address"]
    list_filter = ["expires_at"]
    search_fields = ["user__email", "ip_address", "=id"]
    list_select_related = ["user"]
    exclude = ["token_hash", "data"]
    raw_id_fields = ["user"]
    actions = ["revoke_selected"]
    # Ending a session is the revoke action (audited), not a raw delete.
    deletable = False

    def has_revoke_permission(self, request):
        return can_revoke_sessions(request)

    @admin.display(description="User", ordering="user__email")
    def person(self, session):
        return user_link(session.user)

    @admin.action(description="Revoke the selected sessions", permissions=["revoke"])
    def revoke_selected(self, request, queryset):
        sessions = list(queryset)
        for session in sessions:
            services.session_revoke(session=session, actor=request.user, reason="admin")
        self.message_user(request, f"Revoked {len(sessions)} session(s).", messages.SUCCESS)


@admin.register(Account)
class AccountAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "provider_id",
        "account_id",
        "user",
        "last_sign_in_at",
        "needs_reconsent",
        "created_at",
    ]
    list_filter = ["provider_id", "needs_reconsent"]
    search_fields = ["account_id", "user__email"]
    list_select_related = ["user"]
    exclude = ["access_token", "refresh_token", "id_token"]
    raw_id_fields = ["user"]

    # Accounts are linked by the sign-in flow with the provider; here they are seen or unlinked.
    # Unlinking is an action of the top layer's admin (audited, last-credential rule), never a
    # raw delete.
    deletable = False


@admin.register(Verification)
class VerificationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["identifier", "user", "expires_at", "consumed_at", "created_at"]
    list_filter = ["consumed_at", "expires_at"]
    search_fields = ["identifier", "user__email"]
    exclude = ["value_hash"]
    raw_id_fields = ["user"]

    # Tokens are issued by the flows that email them; here they are seen or withdrawn.
    deletable = True


@admin.register(Passkey)
class PasskeyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["name", "user", "created_at", "last_used_at", "backed_up"]
    search_fields = ["name", "user__email"]
    list_select_related = ["user"]
    # The key material is not a secret, but of no use to an operator.
    exclude = ["public_key", "credential_id"]
    raw_id_fields = ["user"]
    # Users remove their passkeys (with a fresh authentication); operators reset a user's MFA.
    deletable = False


@admin.register(TwoFactor)
class TwoFactorAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["user", "confirmed_at", "created_at"]
    list_filter = ["confirmed_at"]
    search_fields = ["user__email"]
    list_select_related = ["user"]
    # The secret never reaches a page; the step says nothing useful either.
    exclude = ["secret", "last_used_step"]
    raw_id_fields = ["user"]


@admin.register(RecoveryCode)
class RecoveryCodeAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["user", "used_at", "created_at"]
    list_filter = ["used_at"]
    search_fields = ["user__email"]
    list_select_related = ["user"]
    exclude = ["code_hash"]
    raw_id_fields = ["user"]


@admin.register(PasskeyChallenge)
class PasskeyChallengeAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["purpose", "user", "expires_at", "consumed_at", "created_at"]
    list_filter = ["purpose", "consumed_at"]
    exclude = ["challenge_hash"]
    raw_id_fields = ["user"]
