"""Admin pages for users, sessions, accounts and verifications."""

from django import forms
from django.contrib import admin
from django.contrib.auth import password_validation

from sv_sdk.errors import ApplicationError

from .models import Account, Session, User, Verification


class UserAddForm(forms.ModelForm):
    password = forms.CharField(
        widget=forms.PasswordInput,
        required=False,
        help_text="Leave empty for a user who signs in only through a linked account.",
    )

    class Meta:
        model = User
        fields = ["email", "name", "is_staff", "is_superuser"]

    def clean_password(self):
        password = self.cleaned_data.get("password")
        if password:
            password_validation.validate_password(
                password, User(email=self.cleaned_data.get("email", ""))
            )
        return password or None

    def validate_unique(self):
        # Uniqueness (ignoring case) is checked by user_onboard inside its transaction.
        pass


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    list_display = ["email", "name", "email_verified", "is_active", "is_staff", "created_at"]
    list_filter = ["email_verified", "is_active", "is_staff", "is_superuser"]
    search_fields = ["email", "name", "id"]
    readonly_fields = ["id", "password", "last_login", "created_at", "updated_at"]
    fields = [
        "id",
        "email",
        "name",
        "image",
        "email_verified",
        "is_active",
        "is_staff",
        "is_superuser",
        "banned_until",
        "password",
        "last_login",
        "created_at",
        "updated_at",
    ]

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = UserAddForm
            kwargs["fields"] = None
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["email", "name", "password", "is_staff", "is_superuser"]
        return super().get_fields(request, obj)

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else super().get_readonly_fields(request, obj)

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        from django.conf import settings
        from django.utils.module_loading import import_string

        onboard = import_string(settings.SV_USER_ONBOARD)
        try:
            created = onboard(
                email=form.cleaned_data["email"],
                password=form.cleaned_data.get("password"),
                name=form.cleaned_data.get("name", ""),
                is_staff=form.cleaned_data.get("is_staff", False),
                is_superuser=form.cleaned_data.get("is_superuser", False),
                actor=request.user,
            )
        except ApplicationError as exc:
            raise forms.ValidationError(exc.detail) from exc
        obj.pk = created.pk
        obj._state.adding = False
        obj._state.db = created._state.db


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    list_display = ["id", "user", "created_at", "last_seen_at", "expires_at", "ip_address"]
    list_filter = ["expires_at"]
    search_fields = ["user__email", "ip_address", "id"]
    list_select_related = ["user"]
    exclude = ["token_hash", "data"]
    raw_id_fields = ["user"]


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ["provider_id", "account_id", "user", "created_at"]
    list_filter = ["provider_id"]
    search_fields = ["account_id", "user__email"]
    list_select_related = ["user"]
    exclude = ["access_token", "refresh_token", "id_token"]
    raw_id_fields = ["user"]


@admin.register(Verification)
class VerificationAdmin(admin.ModelAdmin):
    list_display = ["identifier", "user", "expires_at", "consumed_at", "created_at"]
    list_filter = ["consumed_at", "expires_at"]
    search_fields = ["identifier", "user__email"]
    exclude = ["value_hash"]
    raw_id_fields = ["user"]
