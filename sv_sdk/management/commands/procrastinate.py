"""Procrastinate's command; with DATABASE_DIRECT_URL set, its worker goes around the pooler."""

from django.conf import settings
from procrastinate.contrib.django.management.commands import procrastinate

from sv_sdk.commands import default_connection_as


class Command(procrastinate.Command):
    help = (
        "Access procrastinate commands; with DATABASE_DIRECT_URL set, connect there instead of"
        " DATABASE_URL's pooler."
    )

    def handle(self, *args, **kwargs):
        # The worker LISTENs for new jobs, and a LISTEN holds for its session only: through a
        # transaction-mode pooler the next transaction may run on another server connection,
        # which never hears the NOTIFY. So the worker, and the jobs it runs, connect directly.
        overrides = settings.SV_DIRECT_DATABASE
        if not overrides:
            return super().handle(*args, **kwargs)
        # The jobs keep the connection pool; the URL's own options come on top.
        options = {**settings.DATABASES["default"]["OPTIONS"], **overrides["OPTIONS"]}
        with default_connection_as({**overrides, "OPTIONS": options}):
            return super().handle(*args, **kwargs)
