"""Django authentication backend whose permission answers follow roles, so the admin does too."""

from django.contrib.auth.backends import BaseBackend

from .selectors import user_has_permission

_READ_WRITE = {"view": "{0}:read", "add": "{0}:write", "change": "{0}:write", "delete": "{0}:write"}

# Django's admin permissions ("<app_label>.<action>_<model>") and the catalogue
# permission each needs, by "app_label.model" (or "app_label" for every model
# of an app). Anything not listed is refused: a new model is invisible to
# staff until someone decides who may see it.
ADMIN_PERMISSIONS: dict[str, dict[str, str]] = {
    "audit_app.auditlog": {"view": "audit:read"},
    "auth_app.user": {
        "view": "users:read",
        "add": "users:write",
        "change": "users:write",
        "delete": "users:delete",
        "export": "users:export",
    },
    "auth_app.account": {
        "view": "users:read",
        "add": "users:write",
        "change": "users:write",
        "delete": "users:write",
    },
    "auth_app.verification": {"view": "users:read", "delete": "users:write"},
    "auth_app.session": {
        "view": "sessions:read",
        "change": "sessions:revoke",
        "delete": "sessions:revoke",
    },
    "permissions_app.role": {
        "view": "roles:read",
        "add": "roles:write",
        "change": "roles:write",
        "delete": "roles:write",
    },
    "permissions_app.userrole": {
        "view": "roles:read",
        "add": "roles:assign",
        "change": "roles:assign",
        "delete": "roles:assign",
    },
    "permissions_app.permissioncache": {"view": "roles:read"},
    "email_app": {k: v.format("email") for k, v in _READ_WRITE.items()},
}


def catalogue_permission(perm: str) -> str | None:
    """The catalogue permission behind a Django permission such as "auth_app.view_user"."""
    app_label, _, codename = perm.partition(".")
    action, _, model = codename.partition("_")
    actions = ADMIN_PERMISSIONS.get(f"{app_label}.{model}") or ADMIN_PERMISSIONS.get(app_label)
    return (actions or {}).get(action)


# The catalogue permissions behind each app label's admin pages, for has_module_perms,
# which the admin asks for every app on every page.
_APP_PERMISSIONS: dict[str, frozenset[str]] = {}
for _key, _actions in ADMIN_PERMISSIONS.items():
    _label = _key.partition(".")[0]
    _APP_PERMISSIONS[_label] = _APP_PERMISSIONS.get(_label, frozenset()) | set(_actions.values())


class RoleBackend(BaseBackend):
    """Answers `has_perm` and `has_module_perms` from the user's roles; authenticates no one."""

    def has_perm(self, user_obj, perm, obj=None):
        # A catalogue permission ("audit:read") is answered as it is; a Django
        # one ("audit_app.view_auditlog") through the table above.
        needed = perm if ":" in perm else catalogue_permission(perm)
        return needed is not None and user_has_permission(user_obj, needed)

    def has_module_perms(self, user_obj, app_label):
        return any(user_has_permission(user_obj, p) for p in _APP_PERMISSIONS.get(app_label, ()))
