"""DRF permission classes for catalogue permissions ("users:read").

They ask `user.has_perm(...)`, which the roles backend (permissions_app.backends)
answers from the permission cache, so an app can guard its views without
importing permissions_app.
"""

from rest_framework.permissions import BasePermission


def HasPermission(permission: str) -> type[BasePermission]:
    """`permission_classes = [HasPermission("users:read")]`: 401 if anonymous, else 403."""

    class _HasPermission(BasePermission):
        message = f"This requires the permission {permission!r}."

        def has_permission(self, request, view):
            user = request.user
            if not (user and user.is_authenticated):
                return False  # DRF answers 401 when no authenticator succeeded
            return user.has_perm(permission)

    _HasPermission.__name__ = f"HasPermission[{permission}]"
    return _HasPermission


class MethodPermission(BasePermission):
    """Needs the view's `required_permissions[request.method]` (HEAD as GET); 401 if anonymous.

    For a path that serves several operations (GET and POST `roles`) with
    different permissions.
    """

    def has_permission(self, request, view):
        user = request.user
        if not (user and user.is_authenticated):
            return False
        method = "GET" if request.method == "HEAD" else request.method
        permission = view.required_permissions.get(method)
        if permission is None:
            # Unhandled methods go on to DRF's 405; a handled one must name its permission.
            return method == "OPTIONS" or not hasattr(view, request.method.lower())
        self.message = f"This requires the permission {permission!r}."
        return user.has_perm(permission)
