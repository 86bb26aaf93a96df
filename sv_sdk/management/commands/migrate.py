"""Django's migrate, run as the owner role when DATABASE_MIGRATE_URL is set."""

from django.conf import settings
from django.core.management.commands import migrate
from django.db import DEFAULT_DB_ALIAS

from sv_sdk.commands import default_connection_as


class Command(migrate.Command):
    help = (
        "Apply migrations; with DATABASE_MIGRATE_URL set, connect as that (owner) role "
        "instead of DATABASE_URL's."
    )

    def handle(self, *args, **options):
        overrides = settings.SV_MIGRATE_DATABASE
        if not overrides or options["database"] != DEFAULT_DB_ALIAS:
            return super().handle(*args, **options)
        with default_connection_as(overrides):
            return super().handle(*args, **options)
