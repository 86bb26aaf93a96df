"""Create the audit log's monthly partitions ahead of time (also a daily job)."""

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from audit_app.partitions import MONTHS_AHEAD
from audit_app.selectors import audit_default_partition_rows, audit_partition_months
from audit_app.services import audit_partitions_ensure
from sv_sdk.commands import parse_moment


class Command(BaseCommand):
    help = "Create the audit log's monthly partitions up to --ahead months from now; list them."

    def add_arguments(self, parser):
        parser.add_argument(
            "--ahead",
            type=int,
            default=MONTHS_AHEAD,
            help=f"months after the current one to prepare (default {MONTHS_AHEAD})",
        )
        parser.add_argument(
            "--since",
            help="ISO 8601 date: also create every month from then on (default: none)",
        )

    def handle(self, *args, ahead, since, **options):
        if not 0 <= ahead <= 120:
            raise CommandError("--ahead must be between 0 and 120")
        since = parse_moment(since, "--since")
        try:
            created = audit_partitions_ensure(ahead=ahead, since=since)
        except DatabaseError as exc:
            raise CommandError(f"could not create partitions: {str(exc).splitlines()[0]}") from None
        for name in created:
            self.stdout.write(f"created {name}")
        months = audit_partition_months()
        span = f"{months[0]:%Y-%m} to {months[-1]:%Y-%m}" if months else "none"
        self.stdout.write(f"{len(months)} monthly partitions: {span}")
        waiting = audit_default_partition_rows()
        if waiting:
            self.stderr.write(
                f"{waiting} rows are in the default partition (their month had no partition);"
                " creating the month's partition moves them into it"
            )
