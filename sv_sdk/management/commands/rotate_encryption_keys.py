"""Re-encrypt every encrypted column with the first key of SV_ENCRYPTION_KEYS."""

from django.apps import apps
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections, transaction

from sv_sdk import crypto
from sv_sdk.commands import Progress
from sv_sdk.db.fields import EncryptedTextField


def encrypted_columns() -> list[tuple[type, list[EncryptedTextField]]]:
    """Every concrete model with encrypted fields, and those fields."""
    found = []
    for model in apps.get_models():
        if model._meta.proxy or not model._meta.managed:
            continue
        fields = [f for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]
        if fields:
            found.append((model, fields))
    return found


class Command(BaseCommand):
    help = (
        "Re-encrypt every encrypted column with the first key of SV_ENCRYPTION_KEYS, so "
        "older keys can then be removed."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--batch-size",
            type=int,
            default=500,
            help="Rows re-encrypted per transaction (default 500).",
        )
        parser.add_argument(
            "--database", default=DEFAULT_DB_ALIAS, help="Database alias (default: default)."
        )

    def handle(self, *args, batch_size, database, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        try:
            crypto.keys_from(tuple(settings.SV_ENCRYPTION_KEYS))
        except crypto.EncryptionKeyError as exc:
            raise CommandError(str(exc)) from None
        for model, fields in encrypted_columns():
            rotated = self._rotate_table(connections[database], model, fields, batch_size)
            columns = ", ".join(f.column for f in fields)
            self.stdout.write(
                f"Re-encrypted {rotated} values in {model._meta.db_table} ({columns})."
            )

    def _rotate_table(self, connection, model, fields, batch_size: int) -> int:
        quote = connection.ops.quote_name
        # Names come from the model's metadata, never from input.
        table = quote(model._meta.db_table)
        pk = quote(model._meta.pk.column)
        columns = [quote(f.column) for f in fields]
        select = (
            f"SELECT {pk}, {', '.join(columns)} FROM {table}"  # noqa: S608
            f" WHERE %s::text IS NULL OR {pk} > %s ORDER BY {pk} LIMIT %s FOR UPDATE"
        )
        update = (
            f"UPDATE {table} SET {', '.join(f'{c} = %s' for c in columns)}"  # noqa: S608
            f" WHERE {pk} = %s"
        )
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608
            total = cursor.fetchone()[0]
        rotated = 0
        last = None
        label = model._meta.db_table
        # On a terminal only; piped output stays one line per table.
        with Progress(self.stdout, label=label, total=total, enabled=total > 0) as progress:
            while True:
                # One transaction per batch: rows are locked while they are rewritten, so a
                # concurrent write to the same row cannot be lost, and a long table does not
                # hold its locks until the end.
                with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
                    cursor.execute(select, [last, last, batch_size])
                    rows = cursor.fetchall()
                    for pk_value, *values in rows:
                        if not any(values):
                            continue
                        new_values = [
                            self._rotate(value, model, field, pk_value)
                            for value, field in zip(values, fields, strict=True)
                        ]
                        cursor.execute(update, [*new_values, pk_value])
                        rotated += sum(1 for value in values if value)
                if not rows:
                    break
                last = rows[-1][0]
                progress.advance(len(rows))
        return rotated

    def _rotate(self, value, model, field, pk_value):
        if not value:
            return value
        try:
            return crypto.rotate(value)
        except crypto.InvalidToken:
            raise CommandError(
                f"{model._meta.db_table}.{field.column} of row {pk_value} cannot be decrypted "
                "with any key in SV_ENCRYPTION_KEYS; add the key it was written with and run "
                "again (rows before it are already re-encrypted)"
            ) from None
