"""Grant a role to a user, optionally until a given time."""

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from permissions_app.services import role_grant
from sv_sdk.errors import ApplicationError

from ._lookups import actor_lookup, add_actor_argument, describe, role_lookup, user_lookup


class Command(BaseCommand):
    help = "Grant a role to a user; granting a held role again replaces its expiry."

    def add_arguments(self, parser):
        parser.add_argument("user", help="The user's email address or id.")
        parser.add_argument("role", help="The role's name.")
        parser.add_argument(
            "--expires-at",
            help="When the assignment ends, ISO 8601 (e.g. 2030-01-31T18:00:00+00:00;"
            " without an offset, the project's time zone). Default: never.",
        )
        add_actor_argument(parser)

    def handle(self, *args, user, role, expires_at, actor, **options):
        expiry = None
        if expires_at:
            try:
                expiry = parse_datetime(expires_at)
            except ValueError:
                expiry = None
            if expiry is None:
                raise CommandError(f"--expires-at: {expires_at!r} is not an ISO 8601 date-time.")
            if timezone.is_naive(expiry):
                expiry = timezone.make_aware(expiry)
        target, granted, granter = user_lookup(user), role_lookup(role), actor_lookup(actor)
        try:
            assignment = role_grant(
                user=target, role=granted, granted_by=granter, expires_at=expiry
            )
        except ApplicationError as exc:
            raise CommandError(describe(exc)) from None
        until = f" until {expiry.isoformat()}" if expiry else ""
        verb = "Renewed" if assignment.renewed else "Granted"
        self.stdout.write(f"{verb} role {granted.name} for {target.email}{until}.")
