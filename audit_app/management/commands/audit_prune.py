"""Retention: delete sealed audit rows older than a date, as the table owner."""

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from audit_app.services import audit_prune
from sv_sdk.commands import parse_moment


class Command(BaseCommand):
    help = (
        "Delete audit rows older than --before, whole checkpoints at a time, and record it."
        " Must run as the owner of the audit tables (see docs/audit.md)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--before", required=True, help="ISO 8601 date or date and time (exclusive)"
        )

    def handle(self, *args, before, **options):
        moment = parse_moment(before, "--before")
        try:
            result = audit_prune(before=moment)
        except DatabaseError as exc:
            raise CommandError(
                "the database refused the retention run; it must connect as the owner of"
                f" audit.audit_logs: {str(exc).splitlines()[0]}"
            ) from None
        if not result.deleted:
            self.stdout.write("nothing to prune: no sealed rows older than that")
            return
        self.stdout.write(
            f"deleted {result.deleted} audit rows up to id {result.through_id}"
            " (recorded as audit.pruned)"
        )
