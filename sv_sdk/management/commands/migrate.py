"""Django's migrate, run as the owner role when DATABASE_MIGRATE_URL is set."""

import copy

from django.conf import settings
from django.core.management.commands import migrate
from django.db import DEFAULT_DB_ALIAS, connections


class Command(migrate.Command):
    help = (
        "Apply migrations; with DATABASE_MIGRATE_URL set, connect as that (owner) role "
        "instead of DATABASE_URL's."
    )

    def handle(self, *args, **options):
        overrides = settings.SV_MIGRATE_DATABASE
        if not overrides or options["database"] != DEFAULT_DB_ALIAS:
            return super().handle(*args, **options)
        connection = connections[DEFAULT_DB_ALIAS]
        original = copy.deepcopy(connection.settings_dict)
        _reconnect(connection, overrides)
        try:
            return super().handle(*args, **options)
        finally:
            # Whatever runs next in this process (a test session, call_command's caller)
            # is back on the application role.
            _reconnect(connection, original)


def _reconnect(connection, settings_dict: dict) -> None:
    connection.close()
    # The pool holds connections opened with the old credentials.
    connection.close_pool()
    connection.settings_dict.update(copy.deepcopy(settings_dict))
