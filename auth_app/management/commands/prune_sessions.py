"""Delete expired sessions (also run hourly by the worker)."""

from django.core.management.base import BaseCommand

from auth_app.services import sessions_prune


class Command(BaseCommand):
    help = "Delete sessions whose expiry has passed."

    def handle(self, *args, **options):
        self.stdout.write(f"Deleted {sessions_prune()} expired sessions.")
