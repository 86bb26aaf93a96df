"""Recompute permission cache rows from the assignments, reporting and fixing any that differ."""

from django.core.management.base import BaseCommand, CommandError

from auth_app.models import User
from permissions_app.services import permission_cache_repair
from sv_sdk.commands import Progress

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
        fixed = 0
        with Progress(self.stdout, total=len(ids)) as progress:
            for start in range(0, len(ids), batch_size):
                batch = ids[start : start + batch_size]
                for fix in permission_cache_repair(user_ids=batch):
                    fixed += 1
                    if fix.missing:
                        progress.write(f"{fix.user_id}: missing row added {fix.permissions}")
                    else:
                        progress.write(
                            f"{fix.user_id}: permissions {fix.old_permissions}"
                            f" -> {fix.permissions}, roles {fix.old_roles} -> {fix.roles},"
                            f" valid until {fix.old_valid_until} -> {fix.valid_until}"
                        )
                progress.advance(len(batch))
        self.stdout.write(f"Checked {len(ids)} user(s); fixed {fixed} row(s).")
