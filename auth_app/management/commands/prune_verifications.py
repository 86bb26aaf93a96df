"""Delete used and expired verification tokens and passkey challenges (also run hourly by
the worker)."""

from django.core.management.base import BaseCommand

from auth_app.services import verifications_prune


class Command(BaseCommand):
    help = "Delete used or expired tokens (verification, reset, sign-in) and passkey challenges."

    def handle(self, *args, **options):
        self.stdout.write(f"Deleted {verifications_prune()} used or expired tokens.")
