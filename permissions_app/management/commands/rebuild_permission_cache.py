"""Recompute permission cache rows from the assignments, reporting and fixing any that differ."""

from django.core.management.base import BaseCommand, CommandError

from auth_app.models import User
from permissions_app.services import permission_cache_repair

from ._lookups import user_lookup


class Command(BaseCommand):
    help = "Check every user's permission cache (or one user's) and rewrite rows that are wrong."

    def add_arguments(self, parser):
        parser.add_argument(
            "--user", help="Only this user (email address or id); default: every user."
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=500,
            help="Users checked per transaction (default 500).",
        )

    def handle(self, *args, user, batch_size, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        if user:
            ids = [user_lookup(user).pk]
        else:
            ids = list(User.objects.order_by("pk").values_list("pk", flat=True))
        progress = self.stdout.isatty()
        fixed = 0
        for start in range(0, len(ids), batch_size):
            for fix in permission_cache_repair(user_ids=ids[start : start + batch_size]):
                fixed += 1
                if progress:
                    self.stdout.write("\r\033[K", ending="")
                if fix.missing:
                    self.stdout.write(f"{fix.user_id}: missing row added {fix.permissions}")
                else:
                    self.stdout.write(
                        f"{fix.user_id}: permissions {fix.old_permissions} -> {fix.permissions},"
                        f" roles {fix.old_roles} -> {fix.roles},"
                        f" valid until {fix.old_valid_until} -> {fix.valid_until}"
                    )
            if progress:
                self._bar(min(start + batch_size, len(ids)), len(ids))
        if progress:
            self.stdout.write("")
        self.stdout.write(f"Checked {len(ids)} user(s); fixed {fixed} row(s).")

    def _bar(self, done: int, total: int, width: int = 30) -> None:
        filled = width * done // total if total else width
        self.stdout.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}", ending="")
        self.stdout.flush()
