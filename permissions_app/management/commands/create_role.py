"""Create a role from catalogue permissions."""

from django.core.management.base import BaseCommand, CommandError

from permissions_app.catalogue import grantable
from permissions_app.services import role_create
from sv_sdk.commands import error_message
from sv_sdk.errors import ApplicationError

from ._lookups import actor_lookup, add_actor_argument


class Command(BaseCommand):
    help = "Create a role holding permissions from the catalogue."

    def add_arguments(self, parser):
        parser.add_argument("name", help="The role's name, a slug such as 'support'.")
        parser.add_argument(
            "--description", default="", help="What the role is for (default: empty)."
        )
        parser.add_argument(
            "--permission",
            "-p",
            action="append",
            default=[],
            dest="permissions",
            metavar="PERMISSION",
            help="A permission the role holds (repeatable; default: none), e.g. users:read, users:*"
            " or *."
            f" Known: {', '.join(grantable())}.",
        )
        add_actor_argument(parser)

    def handle(self, *args, name, description, permissions, actor, **options):
        creator = actor_lookup(actor)
        try:
            role = role_create(
                name=name, description=description, permissions=permissions, actor=creator
            )
        except ApplicationError as exc:
            raise CommandError(error_message(exc)) from None
        held = ", ".join(role.permissions) or "no permissions"
        self.stdout.write(f"Created role {role.name} ({held}).")
