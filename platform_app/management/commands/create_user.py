"""Create a user through user_onboard (role, cache, audit row, verification email)."""

import sys

from django.core.management.base import BaseCommand, CommandError

from platform_app.flows import user_onboard
from sv_sdk.commands import error_message
from sv_sdk.errors import ApplicationError


class Command(BaseCommand):
    help = "Create a user with their default role and queue their verification email."

    def add_arguments(self, parser):
        parser.add_argument("email", help="The new user's email address.")
        parser.add_argument("--name", default="", help="Display name (default: empty).")
        parser.add_argument(
            "--password-stdin",
            action="store_true",
            help="Read the password from the first line of standard input "
            "(never from the command line, where shell history keeps it). Default: no password,"
            " so the user signs in after a password reset.",
        )
        parser.add_argument(
            "--staff", action="store_true", help="Allow admin access (default: off)."
        )
        parser.add_argument(
            "--superuser",
            action="store_true",
            help="Make a superuser with the admin role (default: off).",
        )

    def handle(self, *args, email, name, password_stdin, staff, superuser, **options):
        password = None
        if password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
            if not password:
                raise CommandError("--password-stdin was given but standard input was empty")
        try:
            user = user_onboard(
                email=email,
                password=password,
                name=name,
                is_staff=staff,
                is_superuser=superuser,
                validate_password=True,
            )
        except ApplicationError as exc:
            raise CommandError(error_message(exc)) from None
        self.stdout.write(f"Created user {user.email} ({user.pk}).")
