"""Create the first superuser when there is none, printing its password once."""

import secrets

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from auth_app.models import User
from platform_app.flows import user_onboard
from sv_sdk.commands import error_message
from sv_sdk.errors import ApplicationError


class Command(BaseCommand):
    help = "Create a first superuser (SV_ADMIN_EMAIL) if none exists and print its password once."

    def add_arguments(self, parser):
        parser.add_argument(
            "--email", default=None, help="Email of the admin (default: SV_ADMIN_EMAIL)."
        )

    def handle(self, *args, email, **options):
        if User.objects.filter(is_superuser=True).exists():
            self.stdout.write("A superuser exists already; sign in at /admin/ with it.")
            return
        email = email or settings.SV_ADMIN_EMAIL
        password = secrets.token_urlsafe(12)
        try:
            user = user_onboard(email=email, password=password, is_superuser=True)
        except ApplicationError as exc:
            raise CommandError(error_message(exc)) from None
        self.stdout.write(
            self.style.SUCCESS(
                "Created the first admin. This password is shown only now:\n"
                f"  email:    {user.email}\n  password: {password}"
            )
        )
