"""Import the users, passwords, provider accounts, sessions and reset tokens of a better-auth
database (docs/better-auth-import.md)."""

import psycopg
from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError

from auth_app.errors import EmailTaken
from platform_app.better_auth_import import (
    CONFLICTS,
    SOURCE,
    BetterAuthSource,
    Plan,
    SourceError,
)
from platform_app.flows import users_import
from sv_sdk.commands import Progress

# Conflicts listed one per line before the rest are only counted.
LISTED = 50


class Command(BaseCommand):
    help = (
        "Import a better-auth PostgreSQL database: users keep their ids and passwords, sessions "
        "stay signed in; a re-run imports only users not imported yet."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "database_url",
            metavar="DATABASE_URL",
            help="The better-auth database, postgresql://user@host:port/name (read only; put "
            "the password in PGPASSWORD or ~/.pgpass rather than on the command line).",
        )
        parser.add_argument(
            "--schema",
            default="public",
            help="The PostgreSQL schema of better-auth's tables (default: public).",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Report what would be imported and the conflicts; write nothing (default: off).",
        )
        parser.add_argument(
            "--on-conflict",
            choices=["fail", "skip"],
            default="fail",
            help="fail (default): import nothing and exit non-zero when any user conflicts; "
            "skip: import the others and leave the conflicting users out.",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=500,
            help="Users imported per transaction (default 500).",
        )

    def handle(self, *args, database_url, schema, dry_run, on_conflict, batch_size, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        try:
            with BetterAuthSource(database_url, schema=schema) as source:
                plan = source.plan()
                self._report(plan, dry_run=dry_run)
                if plan.conflicts and on_conflict == "fail":
                    raise CommandError(
                        f"{len(plan.conflicts)} users conflict; nothing was imported. Resolve "
                        "them in the source, or pass --on-conflict=skip to leave them out."
                    )
                if dry_run:
                    return
                self._import(source, plan, batch_size)
        except SourceError as exc:
            raise CommandError(str(exc)) from None
        except psycopg.Error as exc:
            # The source's own errors (Django's are wrapped in its own classes): a privilege
            # missing on one table, the connection lost mid-run.
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise CommandError(f"reading the better-auth database failed: {reason}") from None

    def _report(self, plan: Plan, *, dry_run: bool) -> None:
        write = self.stdout.write
        counts = plan.source_counts
        write(f"{'Dry run: ' if dry_run else ''}better-auth database read.")
        write(
            f"  users: {plan.total} in the source, {plan.already_imported} already imported, "
            f"{len(plan.to_import)} to import, {len(plan.conflicts)} in conflict"
        )
        write(
            f"  in the source: {counts['passwords']} passwords, {counts['provider_accounts']}"
            f" provider accounts, {counts['sessions_live']} live sessions"
            f" ({counts['sessions_expired']} expired, skipped),"
            f" {counts['reset_tokens_pending']} pending password resets"
            f" ({counts['reset_tokens_expired']} expired, skipped),"
            f" {counts['verification_other']} other verification rows (not imported)"
        )
        if plan.other_roles:
            write(
                f"  {plan.other_roles} users have a better-auth role other than 'user'; they get "
                "sv_sdk's default role (grant theirs with grant_role)"
            )
        if plan.conflicts:
            by_kind = {}
            for conflict in plan.conflicts:
                by_kind[conflict.kind] = by_kind.get(conflict.kind, 0) + 1
            write("Conflicts:")
            for kind, count in sorted(by_kind.items()):
                write(f"  {kind}: {count} ({CONFLICTS[kind]})")
            for conflict in plan.conflicts[:LISTED]:
                write(f"  {conflict.kind}: user {conflict.user_id} <{conflict.email}>")
            if len(plan.conflicts) > LISTED:
                write(f"  ... and {len(plan.conflicts) - LISTED} more")

    def _import(self, source: BetterAuthSource, plan: Plan, batch_size: int) -> None:
        totals: dict[str, int] = {}
        ids = plan.to_import
        with Progress(self.stdout, label="importing users", total=len(ids)) as progress:
            for start in range(0, len(ids), batch_size):
                chunk = ids[start : start + batch_size]
                records = source.users(chunk)
                try:
                    counts = users_import(records=records, source=SOURCE)
                except (EmailTaken, IntegrityError):
                    # A sign-up (or a link) here took an email or an account since the plan.
                    raise CommandError(
                        f"the batch from user {chunk[0]} was not imported: an email or provider "
                        "account of one of its users was taken here meanwhile. Earlier batches "
                        "are imported; run the command again to see the conflict."
                    ) from None
                for kind, count in counts.items():
                    totals[kind] = totals.get(kind, 0) + count
                progress.advance(len(chunk))
                if not progress.enabled:
                    self.stdout.write(f"imported {start + len(chunk)}/{len(ids)} users")
        self.stdout.write(
            f"Imported {totals.get('users', 0)} users, {totals.get('accounts', 0)} provider "
            f"accounts, {totals.get('sessions', 0)} sessions and {totals.get('tokens', 0)} "
            "password-reset tokens."
        )
