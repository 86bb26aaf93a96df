"""The permissions that roles may hold, as `resource:action` strings."""

PERMISSIONS = {
    "users:read": "See users and their profiles",
    "users:write": "Create and change users",
    "users:delete": "Delete users",
    "users:export": "Download a person's data (data-subject access request)",
    "sessions:read": "See any user's sessions",
    "sessions:revoke": "Revoke any user's sessions",
    "roles:read": "See roles and assignments",
    "roles:write": "Create, change and delete roles",
    "roles:assign": "Grant and revoke roles",
    "audit:read": "Read the audit log",
    "audit:export": "Export the audit log",
    "email:read": "See email templates and the outbox",
    "email:write": "Change email templates",
    "email:send": "Send email",
    "profile:read": "See one's own profile, sessions and email preferences",
    "profile:write": "Change one's own profile, sessions and email preferences",
}

# Created by permissions_app/migrations/0002_default_roles.py.
DEFAULT_USER_ROLE = "user"
SUPERUSER_ROLE = "admin"

# What each system role keeps whatever else is edited (issue 24): the admin role
# is what makes an admin, and every account relies on the user role.
SYSTEM_ROLE_CORE = {
    SUPERUSER_ROLE: frozenset({"*"}),
    DEFAULT_USER_ROLE: frozenset({"profile:read", "profile:write"}),
    "auditor": frozenset({"audit:read", "audit:export"}),
}

WILDCARD = "*"


def resources() -> list[str]:
    return sorted({permission.partition(":")[0] for permission in PERMISSIONS})


def grantable() -> list[str]:
    """Every string a role may hold: the catalogue, `resource:*` per resource, and `*`."""
    return [WILDCARD, *(f"{r}:*" for r in resources()), *sorted(PERMISSIONS)]


def unknown_permissions(permissions) -> list[str]:
    """The strings in `permissions` that are neither catalogued nor a valid wildcard."""
    allowed = set(grantable())
    return sorted({p for p in permissions if p not in allowed})
