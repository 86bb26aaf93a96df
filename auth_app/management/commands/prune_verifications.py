"""Delete used and expired verification tokens (also run hourly by the worker)."""

from django.core.management.base import BaseCommand

from auth_app.services import verifications_prune


class Command(BaseCommand):
    help = "Delete verification and reset tokens that are used or expired."

    def handle(self, *args, **options):
        self.stdout.write(f"Deleted {verifications_prune()} used or expired tokens.")
