"""DRF permission classes backed by the permission cache."""

from rest_framework.permissions import BasePermission

from permissions_app.selectors import user_has_permission


def HasPermission(permission: str) -> type[BasePermission]:
    """`permission_classes = [HasPermission("users:read")]`: 401 if anonymous, else 403."""

    class _HasPermission(BasePermission):
        message = f"This requires the permission {permission!r}."

        def has_permission(self, request, view):
            user = request.user
            if not (user and user.is_authenticated):
                return False  # DRF answers 401 when no authenticator succeeded
            return user_has_permission(user, permission)

    _HasPermission.__name__ = f"HasPermission[{permission}]"
    return _HasPermission
