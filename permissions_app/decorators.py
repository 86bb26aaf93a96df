"""A permission check for plain Django views."""

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied

from .selectors import user_has_permission


def permission_required(permission: str):
    """`@permission_required("audit:read")`: anonymous users go to the login page, others
    without the permission get 403."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not user_has_permission(request.user, permission):
                raise PermissionDenied(f"This requires the permission {permission!r}.")
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
