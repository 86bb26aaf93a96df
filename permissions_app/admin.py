"""Admin pages for roles, assignments and the permission cache; every change goes through the
services, so it is audited and the cache stays right."""

from contextlib import contextmanager

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.forms.models import BaseInlineFormSet

from sv_sdk.admin_mixins import ReadOnlyAdminMixin
from sv_sdk.errors import ApplicationError

from . import services
from .catalogue import PERMISSIONS, grantable
from .errors import AssignmentNotFound
from .models import PermissionCache, Role, UserRole


@contextmanager
def form_errors(form: forms.BaseForm):
    """Turn the service's refusal inside the block into errors of `form`."""
    try:
        yield
    except ApplicationError as exc:
        fields = {f: m for f, m in exc.errors.items() if f in form.fields}
        for field, messages in fields.items():
            form.add_error(field, messages)
        if not fields:
            form.add_error(None, exc.detail)


@contextmanager
def refused_as_forbidden():
    """Turn the service's refusal inside the block into the admin's 403 page.

    For the writes that have no form to show an error on (deletions, actions'
    rows); the block's transaction rolls back with it.
    """
    try:
        yield
    except ApplicationError as exc:
        raise PermissionDenied(exc.detail) from exc


def _permission_choices() -> list[tuple[str, str]]:
    def label(permission: str) -> str:
        if permission == "*":
            return "* (everything)"
        if permission.endswith(":*"):
            return f"{permission} (every {permission[:-2]} permission)"
        return f"{permission}: {PERMISSIONS[permission]}"

    return [(p, label(p)) for p in grantable()]


class RoleForm(forms.ModelForm):
    permissions = forms.MultipleChoiceField(
        choices=_permission_choices, widget=forms.CheckboxSelectMultiple, required=False
    )
    actor = None  # set per request by RoleAdmin.get_form

    class Meta:
        model = Role
        fields = ["name", "description", "permissions"]

    def clean(self):
        cleaned = super().clean()
        if "name" in cleaned and "permissions" in cleaned:
            with form_errors(self):
                services.role_change_check(
                    actor=self.actor,
                    role=self.instance if self.instance.pk else None,
                    name=cleaned["name"],
                    permissions=cleaned["permissions"],
                )
        return cleaned


@admin.register(Role)
class RoleAdmin(admin.ModelAdmin):
    form = RoleForm
    list_display = ["name", "description", "is_system", "updated_at"]
    list_filter = ["is_system"]
    search_fields = ["name", "description"]
    readonly_fields = ["is_system", "created_at", "updated_at"]

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        form.actor = request.user
        return form

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.is_system:
            return False
        return super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change):
        fields = {k: form.cleaned_data[k] for k in ("name", "description", "permissions")}
        if change:
            services.role_update(role=obj, **fields, actor=request.user)
            return
        created = services.role_create(**fields, actor=request.user)
        obj.pk, obj.created_at, obj.updated_at = created.pk, created.created_at, created.updated_at
        obj._state.adding = False
        obj._state.db = created._state.db

    def delete_model(self, request, obj):
        # The delete page already refuses a role still assigned (PROTECT), so no force here.
        with refused_as_forbidden():
            services.role_delete(role=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        with refused_as_forbidden(), transaction.atomic():
            for role in queryset:
                services.role_delete(role=role, actor=request.user)


class AssignmentForm(forms.ModelForm):
    actor = None  # set per request

    class Meta:
        model = UserRole
        fields = ["user", "role", "expires_at"]

    def clean(self):
        cleaned = super().clean()
        # On a change page user and role are read-only: the assignment's own.
        user = cleaned.get("user") or getattr(self.instance, "user", None)
        role = cleaned.get("role") or getattr(self.instance, "role", None)
        if user is not None and role is not None and "expires_at" in cleaned:
            with form_errors(self):
                services.role_grant_check(
                    actor=self.actor, user=user, role=role, expires_at=cleaned["expires_at"]
                )
        return cleaned


@admin.register(UserRole)
class UserRoleAdmin(admin.ModelAdmin):
    form = AssignmentForm
    list_display = ["user", "role", "granted_by", "granted_at", "expires_at"]
    list_filter = ["role", "expires_at"]
    search_fields = ["user__email", "role__name"]
    list_select_related = ["user", "role", "granted_by"]
    raw_id_fields = ["user"]
    readonly_fields = ["granted_by", "granted_at"]

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        form.actor = request.user
        return form

    def get_readonly_fields(self, request, obj=None):
        # An assignment changes only its expiry; another role is another assignment.
        return [*self.readonly_fields, "user", "role"] if obj else self.readonly_fields

    def save_model(self, request, obj, form, change):
        granted = services.role_grant(
            user=obj.user, role=obj.role, granted_by=request.user, expires_at=obj.expires_at
        )
        obj.pk, obj.granted_at, obj.granted_by = granted.pk, granted.granted_at, request.user
        obj._state.adding = False
        obj._state.db = granted._state.db

    def delete_model(self, request, obj):
        with refused_as_forbidden():
            try:
                services.role_revoke(user=obj.user, role=obj.role, revoked_by=request.user)
            except AssignmentNotFound:
                pass

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for assignment in queryset.select_related("user", "role"):
                self.delete_model(request, assignment)


class AssignmentFormSet(BaseInlineFormSet):
    """Saves the user page's role rows through role_grant / role_revoke."""

    request = None  # set per request by UserRoleInline.get_formset

    def save_new(self, form, commit=True):
        return services.role_grant(
            user=self.instance,
            role=form.cleaned_data["role"],
            granted_by=self.request.user,
            expires_at=form.cleaned_data.get("expires_at"),
        )

    def save_existing(self, form, obj, commit=True):
        if "role" in form.changed_data:
            previous = Role.objects.get(pk=form.initial["role"])
            self.delete_existing(UserRole(user=self.instance, role=previous), commit)
        return services.role_grant(
            user=self.instance,
            role=obj.role,
            granted_by=self.request.user,
            expires_at=obj.expires_at,
        )

    def delete_existing(self, obj, commit=True):
        try:
            services.role_revoke(user=self.instance, role=obj.role, revoked_by=self.request.user)
        except AssignmentNotFound:
            pass


class UserRoleInline(admin.TabularInline):
    model = UserRole
    fk_name = "user"
    form = AssignmentForm
    formset = AssignmentFormSet
    fields = ["role", "expires_at", "granted_by", "granted_at"]
    readonly_fields = ["granted_by", "granted_at"]
    extra = 0

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        formset.request = request
        formset.form.actor = request.user
        return formset


@admin.register(PermissionCache)
class PermissionCacheAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["user", "roles", "permissions", "computed_at", "valid_until"]
    search_fields = ["user__email"]
    list_select_related = ["user"]
