"""Retention: detach whole months of the audit log and export each to a file."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from audit_app.errors import ArchiveRefused
from audit_app.partitions import month_end
from audit_app.selectors import audit_partition_months
from audit_app.services import audit_month_archive
from sv_sdk.commands import parse_moment


class Command(BaseCommand):
    help = (
        "Detach every month of the audit log that ends by --before, export it (rows,"
        " checkpoints, signed manifest) to --output-dir, and drop it from the database."
        " Must run as the owner of the audit tables (see docs/audit.md)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--before",
            required=True,
            help="ISO 8601 date; months ending on or before it are archived",
        )
        parser.add_argument(
            "--output-dir", required=True, help="existing directory to write the archives to"
        )

    def handle(self, *args, before, output_dir, **options):
        moment = parse_moment(before, "--before")
        directory = Path(output_dir)
        if not directory.is_dir():
            raise CommandError(f"--output-dir: {output_dir} is not a directory")
        months = [m for m in audit_partition_months() if month_end(m) <= moment]
        if not months:
            self.stdout.write("nothing to archive: no monthly partition ends by then")
        for month in months:
            result = self._archive(month, directory)
            self.stdout.write(
                f"archived {result.month:%Y-%m}: {result.rows} rows to {result.path}"
                f" (sha256 {result.sha256}; recorded as audit.archived)"
            )

    def _archive(self, month, directory):
        try:
            return audit_month_archive(month=month, directory=directory)
        except ArchiveRefused as exc:
            raise CommandError(f"{month:%Y-%m}: {exc.detail}") from None
        except OSError as exc:
            raise CommandError(f"{month:%Y-%m}: cannot write the archive: {exc.strerror}") from None
        except DatabaseError as exc:
            raise CommandError(
                "the database refused the retention run; it must connect as the owner of"
                f" audit.audit_logs: {str(exc).splitlines()[0]}"
            ) from None
