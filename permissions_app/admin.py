"""Admin pages for roles, assignments and the permission cache."""

from django.contrib import admin

from .models import PermissionCache, Role, UserRole


@admin.register(Role)
class RoleAdmin(admin.ModelAdmin):
    list_display = ["name", "description", "is_system", "updated_at"]
    list_filter = ["is_system"]
    search_fields = ["name", "description"]


@admin.register(UserRole)
class UserRoleAdmin(admin.ModelAdmin):
    list_display = ["user", "role", "granted_by", "granted_at", "expires_at"]
    list_filter = ["role", "expires_at"]
    search_fields = ["user__email", "role__name"]
    list_select_related = ["user", "role", "granted_by"]
    raw_id_fields = ["user", "granted_by"]


@admin.register(PermissionCache)
class PermissionCacheAdmin(admin.ModelAdmin):
    list_display = ["user", "roles", "permissions", "computed_at", "valid_until"]
    search_fields = ["user__email"]
    list_select_related = ["user"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
