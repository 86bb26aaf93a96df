"""Check the cross-schema invariants; exit non-zero with a readable list when any is off."""

from django.core.management.base import BaseCommand, CommandError

from platform_app.invariants import invariants_check


class Command(BaseCommand):
    help = (
        "Check that every user has their default role, one correct permission-cache row and "
        "a user.created audit row; that no token or email points at a missing user; that no "
        "send is stuck in `sending`; and that the audit evidence verifies."
    )

    def handle(self, *args, **options):
        violations = invariants_check()
        for violation in violations:
            self.stderr.write(f"[{violation.check}] {violation.detail}")
        if violations:
            raise CommandError(f"{len(violations)} invariant violation(s)")
        self.stdout.write("All invariants hold.")
