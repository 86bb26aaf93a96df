"""Seal the audit rows written since the last checkpoint (also a periodic job)."""

from django.core.management.base import BaseCommand, CommandError

from audit_app.errors import CheckpointDelayed
from audit_app.services import audit_checkpoint_create


class Command(BaseCommand):
    help = "Write a signed checkpoint over the audit rows added since the previous one."

    def add_arguments(self, parser):
        parser.add_argument(
            "--wait",
            type=float,
            default=60.0,
            help="seconds to wait for open transactions that may still add rows (default 60)",
        )

    def handle(self, *args, wait, **options):
        if wait < 0:
            raise CommandError("--wait must not be negative")
        try:
            checkpoint = audit_checkpoint_create(wait_seconds=wait)
        except CheckpointDelayed as exc:
            raise CommandError(exc.detail) from None
        if checkpoint is None:
            self.stdout.write("nothing new to seal")
            return
        self.stdout.write(
            f"checkpoint {checkpoint.id}: rows ({checkpoint.after_id}, {checkpoint.last_id}],"
            f" {checkpoint.row_count} present; mac {checkpoint.mac}"
        )
