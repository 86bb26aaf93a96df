"""Print a user's effective permissions and where each comes from."""

from django.core.management.base import BaseCommand

from permissions_app.selectors import permission_sources, permissions_for_user, user_assignments

from ._lookups import user_lookup


class Command(BaseCommand):
    help = "Print a user's effective permissions and the roles each one comes from."

    def add_arguments(self, parser):
        parser.add_argument("user", help="The user's email address or id.")

    def handle(self, *args, user, **options):
        target = user_lookup(user)
        self.stdout.write(f"{target.email} ({target.pk})")
        if not target.is_active:
            self.stdout.write("inactive: holds no permission until reactivated")
        for assignment in user_assignments(user_id=target.pk):
            until = assignment.expires_at.isoformat() if assignment.expires_at else "no expiry"
            self.stdout.write(f"role {assignment.role.name}: {until}")
        sources = permission_sources(target)
        if not sources:
            self.stdout.write("no permissions")
        width = max((len(p) for p in sources), default=0)
        effective = permissions_for_user(target)
        for permission, origins in sources.items():
            note = "" if permission in effective or "*" in effective else " (not in effect)"
            self.stdout.write(f"{permission.ljust(width)}  from {', '.join(origins)}{note}")
