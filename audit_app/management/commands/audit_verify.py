"""Check that no audit row was altered, deleted or inserted out of band."""

from contextlib import nullcontext
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from audit_app.archive import ArchiveUnreadable, verify_archive
from audit_app.models import AuditLog
from audit_app.selectors import audit_verify
from sv_sdk.commands import Progress, database_url_settings, default_connection_as

SHOWN = 20


class Command(BaseCommand):
    help = (
        "Verify every audit row's MAC and every checkpoint; name the first bad row."
        " Exits non-zero when the trail is not intact. With --archive, check an archived"
        " month's file instead, without the database."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--archive",
            metavar="FILE",
            help="an archive written by audit_archive: check it offline, with the audit key"
            " (default: check the live database)",
        )
        parser.add_argument(
            "--database-url",
            help="postgres:// URL of another database holding the audit schema to verify, such as"
            " a subscriber made by audit_subscribe (default: this app's database).",
        )

    def handle(self, *args, archive, database_url, **options):
        if archive:
            if database_url:
                raise CommandError("--archive checks a file offline; it takes no --database-url")
            self._verify_archive(Path(archive))
            return
        where = (
            default_connection_as(database_url_settings(database_url, "--database-url"))
            if database_url
            else nullcontext()
        )
        try:
            with where, Progress(self.stderr, label="verifying") as progress:
                if progress.enabled:
                    progress.total = AuditLog.objects.count()

                def advance(done: int) -> None:
                    progress.advance(done - progress.done)

                result = audit_verify(progress=advance)
        except DatabaseError as exc:
            raise CommandError(f"reading the audit trail failed: {str(exc).strip()}") from None
        summary = (
            f"{result.rows} rows, {result.checkpoints} checkpoints,"
            f" {result.unsealed_rows} rows after the last checkpoint"
        )
        if result.floor:
            summary += f", rows up to {result.floor} removed by a recorded retention run"
        if result.archived_months:
            summary += f", {result.archived_months} month(s) archived"
        if not result.problems:
            self.stdout.write(f"audit trail intact: {summary}")
            return
        for problem in result.problems[:SHOWN]:
            self.stderr.write(f"{problem.kind}: {problem.detail}")
        if len(result.problems) > SHOWN:
            self.stderr.write(f"... and {len(result.problems) - SHOWN} more")
        first = result.first_bad_row
        where = f"first bad row: {first.row_id} ({first.kind})" if first else "see above"
        raise CommandError(
            f"audit trail NOT intact: {len(result.problems)} problem(s), {where}; {summary}"
        )

    def _verify_archive(self, path: Path) -> None:
        try:
            result = verify_archive(path)
        except ArchiveUnreadable as exc:
            raise CommandError(f"{path} is not a readable audit archive: {exc}") from None
        summary = (
            f"{result.month}, {result.rows} rows, {result.checkpoints} checkpoints"
            f" ({result.checked_in_part} checked in part: they also sealed rows of a month"
            " archived earlier)"
        )
        if not result.problems:
            self.stdout.write(f"archive intact: {summary}")
            return
        for problem in result.problems[:SHOWN]:
            self.stderr.write(problem)
        if len(result.problems) > SHOWN:
            self.stderr.write(f"... and {len(result.problems) - SHOWN} more")
        raise CommandError(
            f"archive NOT intact: {len(result.problems)} problem(s), first: {result.problems[0]}"
        )
