"""Giving a request's pooled connection back while it does slow work that needs no database."""

from django.db import connections


def connection_release(using: str = "default") -> None:
    """Return the connection to its pool, unless a transaction is open on it.

    Django keeps the connection a request first used until the request ends. Before
    CPU-bound work between queries (a password hash: tens of milliseconds), giving it
    back lets another thread's request use it; the next query takes one again. Inside
    a transaction this does nothing: the transaction needs its connection.
    """
    connection = connections[using]
    if connection.connection is not None and not connection.in_atomic_block:
        connection.close()
