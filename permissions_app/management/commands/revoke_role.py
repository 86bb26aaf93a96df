"""Take a role away from a user."""

from django.core.management.base import BaseCommand, CommandError

from permissions_app.services import role_revoke
from sv_sdk.commands import error_message
from sv_sdk.errors import ApplicationError

from ._lookups import actor_lookup, add_actor_argument, role_lookup, user_lookup


class Command(BaseCommand):
    help = "Revoke a role from a user; their permissions change at once."

    def add_arguments(self, parser):
        parser.add_argument("user", help="The user's email address or id.")
        parser.add_argument("role", help="The role's name.")
        add_actor_argument(parser)

    def handle(self, *args, user, role, actor, **options):
        target, revoked, revoker = user_lookup(user), role_lookup(role), actor_lookup(actor)
        try:
            role_revoke(user=target, role=revoked, revoked_by=revoker)
        except ApplicationError as exc:
            raise CommandError(f"{target.email}: {error_message(exc)}") from None
        self.stdout.write(f"Revoked role {revoked.name} from {target.email}.")
