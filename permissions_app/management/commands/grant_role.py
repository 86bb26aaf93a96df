"""Grant a role to a user, optionally until a given time."""

from django.core.management.base import BaseCommand, CommandError

from permissions_app.services import role_grant
from sv_sdk.commands import error_message, parse_moment
from sv_sdk.errors import ApplicationError

from ._lookups import actor_lookup, add_actor_argument, role_lookup, user_lookup


class Command(BaseCommand):
    help = "Grant a role to a user; granting a held role again replaces its expiry."

    def add_arguments(self, parser):
        parser.add_argument("user", help="The user's email address or id.")
        parser.add_argument("role", help="The role's name.")
        parser.add_argument(
            "--expires-at",
            help="When the assignment ends, an ISO 8601 date or date and time (e.g."
            " 2030-01-31T18:00:00+00:00; without an offset, the project's time zone)."
            " Default: never.",
        )
        add_actor_argument(parser)

    def handle(self, *args, user, role, expires_at, actor, **options):
        expiry = parse_moment(expires_at, "--expires-at")
        target, granted, granter = user_lookup(user), role_lookup(role), actor_lookup(actor)
        try:
            assignment = role_grant(
                user=target, role=granted, granted_by=granter, expires_at=expiry
            )
        except ApplicationError as exc:
            raise CommandError(error_message(exc)) from None
        until = f" until {expiry.isoformat()}" if expiry else ""
        verb = "Renewed" if assignment.renewed else "Granted"
        self.stdout.write(f"{verb} role {granted.name} for {target.email}{until}.")
