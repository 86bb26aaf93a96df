"""Look-ups shared by the permissions commands: bad input becomes CommandError."""

from django.core.management.base import CommandError

from auth_app.models import User
from auth_app.selectors import user_get_by_email
from permissions_app.models import Role


def user_lookup(identifier: str) -> User:
    user = user_get_by_email(email=identifier) or User.objects.filter(pk=identifier).first()
    if user is None:
        raise CommandError(f"No user with the email or id {identifier!r}.")
    return user


def add_actor_argument(parser) -> None:
    parser.add_argument(
        "--actor",
        help="Act as this user (email address or id), under the privilege rule of"
        " docs/security.md, and record them in the audit trail."
        " Default: the system, which the rule does not restrict.",
    )


def actor_lookup(identifier: str | None) -> User | None:
    """The user named by --actor, or None (the system) without one."""
    return user_lookup(identifier) if identifier else None


def role_lookup(name: str) -> Role:
    role = Role.objects.filter(name=name).first()
    if role is None:
        raise CommandError(f"No role named {name!r}.")
    return role
