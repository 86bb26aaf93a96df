"""The permissions that roles may hold, as `resource:action` strings."""

PERMISSIONS = {
    "users:read": "See users and their profiles",
    "users:write": "Create and change users",
    "users:delete": "Delete users",
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
