"""Create the owner, application, read-only and auditor roles and their grants."""

import re
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction

from sv_sdk import env as sv_env

GRANTS_SQL = Path(__file__).resolve().parents[2] / "db" / "grants.sql"

# kind -> (default role name, environment variable holding its password)
ROLES = {
    "owner": ("sv_owner", "SV_OWNER_PASSWORD"),
    "app": ("sv_app", "SV_APP_PASSWORD"),
    "readonly": ("readonly_user", "READONLY_PASSWORD"),
    "auditor": ("auditor_user", "AUDITOR_PASSWORD"),
}

_VARIABLE = re.compile(r':"(\w+)"')


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def grants_sql(*, roles: dict[str, str], database: str) -> str:
    """The statements of sv_sdk/db/grants.sql with the role and database names bound."""
    names = {f"{kind}_role": name for kind, name in roles.items()} | {"dbname": database}
    return _VARIABLE.sub(lambda match: quote_ident(names[match.group(1)]), GRANTS_SQL.read_text())


def set_password(cursor, name: str, password: str) -> None:
    """Give role `name` (a LOGIN role) `password`."""
    # libpq hashes the password here, as psql's \password does: the server (and its log,
    # with log_statement set) only ever sees the SCRAM verifier.
    pgconn = cursor.connection.pgconn
    verifier = pgconn.encrypt_password(password.encode(), name.encode(), b"scram-sha-256")
    cursor.execute(f"ALTER ROLE {quote_ident(name)} LOGIN PASSWORD '{verifier.decode()}'")


class Command(BaseCommand):
    help = (
        "Create the database roles (owner, application, read-only, auditor) and grant them "
        "their privileges on the four schemas; safe to run again."
    )

    def add_arguments(self, parser):
        for kind, (default, variable) in ROLES.items():
            parser.add_argument(
                f"--{kind}-role",
                default=default,
                help=f"Name of the {kind} role (default {default}; password from {variable}).",
            )
        parser.add_argument(
            "--passwords-stdin",
            action="store_true",
            help="Read passwords from standard input as VARIABLE=password lines, with the "
            f"variable names above ({', '.join(v for _, v in ROLES.values())}). "
            "Default: off, passwords come from those environment variables.",
        )
        parser.add_argument(
            "--database",
            default=DEFAULT_DB_ALIAS,
            help="Database alias to connect with; needs a superuser (or CREATEROLE and "
            "membership in the owner role). Default: default.",
        )

    def handle(self, *args, passwords_stdin, database, **options):
        roles = {kind: options[f"{kind}_role"] for kind in ROLES}
        for kind, name in roles.items():
            if not name or len(name.encode()) > 63 or name.startswith("pg_"):
                raise CommandError(f"--{kind}-role must be 1 to 63 bytes and not start with pg_")
        if len(set(roles.values())) != len(roles):
            raise CommandError("the four roles need four different names")
        passwords = self._passwords(from_stdin=passwords_stdin)

        connection = connections[database]
        try:
            with transaction.atomic(using=database), connection.cursor() as cursor:
                for kind, name in roles.items():
                    self._ensure_role(cursor, kind, name, passwords.get(kind))
                cursor.execute(grants_sql(roles=roles, database=connection.settings_dict["NAME"]))
        except DatabaseError as exc:
            raise CommandError(f"setting up the roles failed: {exc}".strip()) from None
        self.stdout.write(
            f"Granted privileges in database {connection.settings_dict['NAME']} to "
            + ", ".join(roles.values())
            + "."
        )

    def _passwords(self, *, from_stdin: bool) -> dict[str, str]:
        by_variable = {variable: kind for kind, (_, variable) in ROLES.items()}
        passwords = {}
        for variable, kind in by_variable.items():
            password = sv_env.role_password(variable)
            if password:
                passwords[kind] = password
        if from_stdin:
            for number, line in enumerate(sys.stdin.read().splitlines(), start=1):
                if not line.strip():
                    continue
                variable, separator, password = line.partition("=")
                variable = variable.strip()
                if not separator or variable not in by_variable:
                    # The line may hold a password: name the line, never echo it.
                    raise CommandError(
                        f"standard input line {number}: expected VARIABLE=password with one "
                        f"of {', '.join(by_variable)}"
                    )
                if not password:
                    raise CommandError(f"standard input line {number}: empty password")
                passwords[by_variable[variable]] = password
        return passwords

    def _ensure_role(self, cursor, kind: str, name: str, password: str | None) -> None:
        cursor.execute(
            "SELECT rolsuper OR rolcreaterole OR rolcreatedb, rolname = current_user"
            " FROM pg_roles WHERE rolname = %s",
            [name],
        )
        found = cursor.fetchone()
        exists = found is not None
        if not exists and password is None:
            raise CommandError(
                f"role {name} does not exist and no password was given for it: set "
                f"{ROLES[kind][1]} or use --passwords-stdin"
            )
        if not exists:
            cursor.execute(f"CREATE ROLE {quote_ident(name)} LOGIN")
        if password is not None:
            set_password(cursor, name, password)
        state = "created" if not exists else "password set" if password else "unchanged"
        if kind == "owner" and exists and found[0]:
            # The owner owns tables, not the server (see docs/security.md).
            if found[1]:
                raise CommandError(
                    f"the owner role {name} is a superuser and is the role connected: connect "
                    "as another superuser, which demotes it"
                )
            cursor.execute(f"ALTER ROLE {quote_ident(name)} NOSUPERUSER NOCREATEDB NOCREATEROLE")
            state += ", superuser, createrole and createdb taken away"
        self.stdout.write(f"Role {name} ({kind}): {state}.")
