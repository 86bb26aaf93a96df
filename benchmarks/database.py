"""A throwaway database on the server Django's default connection points at."""

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from django.conf import settings
from django.core.management import call_command
from django.db import connections
from psycopg import sql

from sv_sdk.db.params import connect_params


def maintenance_connection() -> psycopg.Connection:
    return connect("postgres")


def connect(dbname: str) -> psycopg.Connection:
    """An autocommit psycopg connection to `dbname` on the default connection's server."""
    params = connect_params(settings.DATABASES["default"])
    return psycopg.connect(**{**params, "dbname": dbname}, autocommit=True)


def _drop(name: str) -> None:
    with maintenance_connection() as conn:
        # FORCE ends sessions a crashed run may have left behind.
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@contextmanager
def bench_database() -> Iterator[str]:
    """Create and migrate the bench database; drop it on the way out, whatever happened."""
    name = settings.DATABASES["default"]["NAME"]
    if name != settings.BENCH_DATABASE_NAME:
        raise RuntimeError(f"refusing to recreate {name!r}: not the bench database")
    _drop(name)  # left over from an interrupted run
    with maintenance_connection() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        call_command("migrate", interactive=False, verbosity=0)
        yield name
    finally:
        # Pooled connections stay open after close_all(); only closing the pool ends them.
        connections.close_all()
        connections["default"].close_pool()
        _drop(name)
