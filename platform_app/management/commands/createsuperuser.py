"""Django's createsuperuser, onboarding through user_onboard, with clean errors."""

from django.contrib.auth.management.commands import createsuperuser
from django.core.management.base import CommandError

from sv_sdk.commands import error_message
from sv_sdk.errors import ApplicationError


class Command(createsuperuser.Command):
    help = "Create a superuser through user_onboard (admin role, audit row, verification email)."

    def handle(self, *args, **options):
        # The user model's manager routes creation through user_onboard; a
        # failure there (say, the email taken in another letter case) is a
        # clean CommandError rather than a traceback.
        try:
            return super().handle(*args, **options)
        except ApplicationError as exc:
            raise CommandError(error_message(exc)) from None
