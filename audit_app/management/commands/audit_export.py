"""Stream audit rows as JSON lines or CSV, in constant memory."""

import csv
import io
import json

from django.core.management.base import BaseCommand, CommandError

from audit_app.models import READABLE_FIELDS
from audit_app.selectors import audit_export_rows
from sv_sdk.commands import Progress, parse_moment

COLUMNS = list(READABLE_FIELDS)
CHUNK = 2000
# Spreadsheets run cells that start with these as formulas; user agents are
# attacker-controlled, so CSV cells starting with one get a leading quote.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value):
    if value is None:
        return ""
    if isinstance(value, dict | list):
        value = json.dumps(value, sort_keys=True, ensure_ascii=False)
    value = str(value)
    return f"'{value}" if value.startswith(_FORMULA_START) else value


class Command(BaseCommand):
    help = "Export the audit log in [--since, --until) as JSON lines or CSV, oldest first."

    def add_arguments(self, parser):
        parser.add_argument(
            "--since",
            help="ISO 8601 date or date and time, inclusive (default: the first row)",
        )
        parser.add_argument(
            "--until",
            help="ISO 8601 date or date and time, exclusive (default: now)",
        )
        parser.add_argument(
            "--format",
            choices=["jsonl", "csv"],
            default="jsonl",
            help="output format (default jsonl)",
        )
        parser.add_argument("--output", help="file to write (default: standard output)")

    def handle(self, *args, since, until, format, output, **options):
        since = parse_moment(since, "--since")
        until = parse_moment(until, "--until")
        if since and until and since >= until:
            raise CommandError("--since must be earlier than --until")
        rows = audit_export_rows(since=since, until=until).values(*COLUMNS)
        try:
            out = open(output, "w", encoding="utf-8", newline="") if output else None
        except OSError as exc:
            raise CommandError(f"cannot write {output}: {exc.strerror}") from None
        # The bar goes to stderr, and only when it is a terminal that is not
        # also showing the exported rows.
        showing_rows = out is None and self.stdout.isatty()
        with Progress(self.stderr, label="exporting", enabled=not showing_rows) as progress:
            if progress.enabled:
                progress.total = rows.count()
            try:
                written = self._write(rows, format, out, progress)
            finally:
                if out is not None:
                    out.close()
        if out is not None:
            self.stderr.write(f"exported {written} rows to {output}")

    def _write(self, rows, format, out, progress) -> int:
        buffer = io.StringIO()
        writer = csv.writer(buffer) if format == "csv" else None
        if writer:
            writer.writerow(COLUMNS)
        written = 0
        for row in rows.iterator(chunk_size=CHUNK):
            row["occurred_at"] = row["occurred_at"].isoformat()
            if writer:
                writer.writerow([_csv_cell(row[column]) for column in COLUMNS])
            else:
                buffer.write(json.dumps(row, ensure_ascii=False))
                buffer.write("\n")
            written += 1
            if written % CHUNK == 0:
                self._flush(buffer, out)
                progress.advance(CHUNK)
        self._flush(buffer, out)
        progress.advance(written % CHUNK)
        return written

    def _flush(self, buffer: io.StringIO, out) -> None:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if out is not None:
            out.write(text)
        else:
            self.stdout.write(text, ending="")
