"""Reads from the permissions schema: effective permissions and checks."""

from django.utils import timezone

from .models import PermissionCache


def permission_matches(granted: str, wanted: str) -> bool:
    """Whether a granted permission string covers the wanted `resource:action`."""
    if granted in ("*", wanted):
        return True
    resource, _, action = granted.partition(":")
    return action == "*" and wanted.partition(":")[0] == resource


def permissions_for_user(user) -> frozenset[str]:
    """The user's effective permissions, read once per user object."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return frozenset()
    if user.is_superuser:
        return frozenset({"*"})
    cached = getattr(user, "_sv_permissions", None)
    if cached is not None:
        return cached
    try:
        cache = user.permission_cache
    except PermissionCache.DoesNotExist:
        cache = None
    if cache is None:
        permissions = frozenset()
    elif cache.valid_until is not None and cache.valid_until <= timezone.now():
        # An assignment expired since the row was computed: ask the tables.
        from .services import permission_cache_refresh

        permission_cache_refresh(user_ids=[user.pk])
        cache = PermissionCache.objects.get(user_id=user.pk)
        permissions = frozenset(cache.permissions)
    else:
        permissions = frozenset(cache.permissions)
    user._sv_permissions = permissions
    return permissions


def user_has_permission(user, permission: str) -> bool:
    return any(permission_matches(g, permission) for g in permissions_for_user(user))
