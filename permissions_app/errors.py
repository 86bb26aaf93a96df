"""Permission errors."""

from sv_sdk.errors import ApplicationError, Conflict, NotFound


class UnknownPermission(ApplicationError):
    status_code = 400
    code = "unknown_permission"
    title = "Unknown permission"
    default_detail = "A permission is not in the catalogue."


class PrivilegeExceeded(ApplicationError):
    """The privilege rule (docs/security.md): nobody acts beyond the permissions they hold."""

    status_code = 403
    code = "privilege_exceeded"
    title = "Beyond your privileges"
    default_detail = "You can act only on users and roles whose permissions you hold yourself."


class RoleNameTaken(Conflict):
    code = "role_name_taken"
    title = "Role name taken"
    default_detail = "A role with this name already exists."


class RoleInUse(Conflict):
    code = "role_in_use"
    title = "Role in use"
    default_detail = "The role is still assigned; revoke it first or force the deletion."


class SystemRole(Conflict):
    code = "system_role"
    title = "System role"
    default_detail = "System roles cannot be deleted, renamed or lose their core permissions."


class AssignmentNotFound(NotFound):
    code = "not_found"
    default_detail = "The user does not have this role."
