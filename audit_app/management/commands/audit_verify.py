"""Check that no audit row was altered, deleted or inserted out of band."""

from django.core.management.base import BaseCommand, CommandError

from audit_app.models import AuditLog
from audit_app.selectors import audit_verify
from sv_sdk.commands import Progress

SHOWN = 20


class Command(BaseCommand):
    help = (
        "Verify every audit row's MAC and every checkpoint; name the first bad row."
        " Exits non-zero when the trail is not intact."
    )

    def handle(self, *args, **options):
        with Progress(self.stderr, label="verifying") as progress:
            if progress.enabled:
                progress.total = AuditLog.objects.count()

            def advance(done: int) -> None:
                progress.advance(done - progress.done)

            result = audit_verify(progress=advance)
        summary = (
            f"{result.rows} rows, {result.checkpoints} checkpoints,"
            f" {result.unsealed_rows} rows after the last checkpoint"
        )
        if result.floor:
            summary += f", rows up to {result.floor} removed by a recorded retention run"
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
