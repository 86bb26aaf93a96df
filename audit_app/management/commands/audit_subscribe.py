"""Put the audit schema on a second PostgreSQL server, kept current by logical replication."""

import importlib

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction
from psycopg.conninfo import make_conninfo

from sv_sdk import env as sv_env
from sv_sdk.commands import database_url_settings, default_connection_as
from sv_sdk.db.params import connect_params
from sv_sdk.management.commands.setup_db_roles import ROLES, quote_ident, set_password

PUBLICATION = "sv_audit"  # audit_app/migrations/0004_audit_publication.py
# The append-only triggers, as on the primary. Replication applies rows with the triggers
# asleep (session_replication_role = replica); they stop anyone else changing a row there.
_APPEND_ONLY_SQL = importlib.import_module(
    "audit_app.migrations.0002_append_only_evidence"
).APPEND_ONLY_SQL


class Command(BaseCommand):
    help = (
        "Create the audit schema, its tables and the auditor role on a second PostgreSQL"
        " server, and subscribe it to this database's audit publication."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "subscriber_url",
            help="postgres:// URL of the subscriber's database, as a superuser there.",
        )
        parser.add_argument(
            "--publisher-url",
            help="postgres:// URL the subscriber's server uses to reach this database, as a role"
            " with REPLICATION (it is stored in the subscription). Default: this command's own"
            " connection.",
        )
        parser.add_argument(
            "--name",
            default=PUBLICATION,
            help=f"Name of the subscription and of its slot on this server (default {PUBLICATION};"
            " one per subscriber).",
        )
        parser.add_argument(
            "--auditor-role",
            default=ROLES["auditor"][0],
            help=f"The subscriber's only role for reading (default {ROLES['auditor'][0]};"
            f" password from {ROLES['auditor'][1]}).",
        )

    def handle(self, *args, subscriber_url, publisher_url, name, auditor_role, **options):
        subscriber = database_url_settings(subscriber_url, "SUBSCRIBER_URL")
        publisher = (
            database_url_settings(publisher_url, "--publisher-url")
            if publisher_url
            else connections[DEFAULT_DB_ALIAS].settings_dict
        )
        # The URL's libpq options (sslmode, a socket directory as host) go along.
        conninfo = make_conninfo(**connect_params(publisher))
        password = sv_env.role_password(ROLES["auditor"][1])
        try:
            with default_connection_as(subscriber):
                self._subscribe(name, conninfo, auditor_role, password)
        except DatabaseError as exc:
            # psycopg's message names hosts and roles, never a password.
            raise CommandError(f"subscribing failed: {str(exc).strip()}") from None
        self.stdout.write(
            f"Subscription {name} created on {subscriber['NAME']}: the audit rows are copied,"
            " then follow as they are written."
        )

    def _subscribe(self, name: str, conninfo: str, auditor_role: str, password: str | None):
        connection = connections[DEFAULT_DB_ALIAS]
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_subscription WHERE subname = %s", [name])
            if cursor.fetchone():
                raise CommandError(f"the subscriber already has a subscription named {name}")
            cursor.execute("SELECT to_regclass('audit.audit_logs') IS NOT NULL")
            if cursor.fetchone()[0]:
                raise CommandError(
                    "the subscriber already has audit tables: subscribe an empty database"
                )
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [auditor_role])
            role_exists = cursor.fetchone() is not None
            if not role_exists and password is None:
                raise CommandError(
                    f"role {auditor_role} does not exist on the subscriber and no password was"
                    f" given for it: set {ROLES['auditor'][1]}"
                )
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("CREATE SCHEMA IF NOT EXISTS audit")
            with connection.schema_editor(atomic=False) as editor:
                for model in apps.get_app_config("audit_app").get_models():
                    editor.create_model(model)
            cursor.execute(_APPEND_ONLY_SQL)
            role = quote_ident(auditor_role)
            if not role_exists:
                cursor.execute(f"CREATE ROLE {role} LOGIN")
            if password is not None:
                set_password(cursor, auditor_role, password)
            database = quote_ident(connection.settings_dict["NAME"])
            cursor.execute(f"GRANT CONNECT ON DATABASE {database} TO {role}")
            cursor.execute(f"GRANT USAGE ON SCHEMA audit TO {role}")
            cursor.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA audit TO {role}")
            cursor.execute(
                f"ALTER DEFAULT PRIVILEGES IN SCHEMA audit GRANT SELECT ON TABLES TO {role}"
            )
        # Outside a transaction: creating the subscription creates its slot on the publisher.
        with connection.cursor() as cursor:
            cursor.execute(
                f"CREATE SUBSCRIPTION {quote_ident(name)} CONNECTION {_literal(conninfo)}"
                f" PUBLICATION {PUBLICATION}"
            )


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
