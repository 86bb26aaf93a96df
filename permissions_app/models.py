"""Roles, their assignment to users, and effective permissions (schema `permissions`)."""

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone

from sv_sdk.db.fields import id_field
from sv_sdk.db.tables import schema_table


class Role(models.Model):
    id = id_field()
    name = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    # Permission strings: "resource:action", "resource:*" or "*".
    permissions = ArrayField(models.CharField(max_length=100), default=list, blank=True)
    # System roles (admin, user, auditor) cannot be deleted.
    is_system = models.BooleanField(default=False)
    # Holders must enrol a second factor (docs/mfa.md, "Enforcement").
    requires_mfa = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = schema_table("permissions", "roles")
        ordering = ["name"]

    def __str__(self):
        return self.name


class UserRole(models.Model):
    id = id_field()
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="user_roles"
    )
    # PROTECT: a role still assigned cannot be deleted by accident.
    role = models.ForeignKey(Role, on_delete=models.PROTECT, related_name="assignments")
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    granted_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = schema_table("permissions", "user_roles")
        constraints = [
            models.UniqueConstraint(fields=["user", "role"], name="user_roles_user_role_uniq"),
        ]
        indexes = [
            # A role's holders in user order: the users list filtered by role pages along it.
            models.Index(
                fields=["role", "user"], include=["expires_at"], name="user_roles_role_user_idx"
            ),
        ]

    def __str__(self):
        return f"{self.user_id} has {self.role_id}"


class PermissionCache(models.Model):
    """A user's effective permissions, rewritten in every transaction that changes them."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="permission_cache",
    )
    permissions = ArrayField(models.CharField(max_length=100), default=list)
    roles = ArrayField(models.CharField(max_length=100), default=list)
    computed_at = models.DateTimeField(default=timezone.now)
    # The earliest expiry among the assignments counted; past it, recompute.
    valid_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = schema_table("permissions", "permission_cache")
        verbose_name = "permission cache entry"
        verbose_name_plural = "permission cache"

    def __str__(self):
        return f"permissions of {self.user_id}"
