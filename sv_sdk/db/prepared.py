"""Named prepared statements for the few reads behind every API request.

PostgreSQL plans a statement anew each time unless it is prepared, and for the
small statements behind every request (the session lookup, the user list)
planning costs more than running them. Django leaves psycopg's own preparing
off (it breaks behind transaction-pooling proxies), so these few are prepared
by hand: once per connection, in the same round trip as their first run, so
a request still makes one query.
"""

import re
import weakref

import psycopg
from django.conf import settings
from psycopg.pq import Format

# psycopg's own timestamptz loader (compiled, with the binary package) in place of
# the Python subclass Django registers, which parses in Python and then sets the
# connection's zone, UTC, that the server's text already carries: on a users page
# of 50 that was 0.5 ms of CPU, this one 0.15 ms. Both give aware datetimes in UTC.
_TIMESTAMPTZ = psycopg.adapters.types["timestamptz"].oid
_TIMESTAMPTZ_LOADER = psycopg.adapters.get_loader(_TIMESTAMPTZ, Format.TEXT)

# The statements prepared on each open database connection (a psycopg
# connection, pooled across requests), by name; None: unknown after an error.
_prepared: "weakref.WeakKeyDictionary[object, set[str] | None]" = weakref.WeakKeyDictionary()
_PLACEHOLDER = re.compile(r"\$(\d+)")


def execute_prepared(cursor, *, name: str, sql: str, params: list) -> None:
    """Run `sql` on `cursor` (a Django cursor) as this connection's prepared statement `name`.

    `name` is a constant identifier naming one `sql` only; `sql` takes its
    values as $1, $2, ... from `params` (never formatted into it) and writes a
    literal percent sign as %%. The rows are then read from `cursor` as usual, their
    datetimes by psycopg's own loader.
    """
    connection = cursor.db.connection
    known = _prepared.get(connection, set())
    if known is None:
        # An earlier run failed: PREPARE may or may not have taken effect, and
        # something may have deallocated what was prepared. Ask the server.
        cursor.execute("SELECT name FROM pg_prepared_statements")
        known = {row[0] for row in cursor.fetchall()}
    _prepared[connection] = known
    cursor.cursor.adapters.register_loader(_TIMESTAMPTZ, _TIMESTAMPTZ_LOADER)
    # A bound on plans kept per connection (PostgreSQL holds each in the backend's
    # memory). Past it, or with it at 0, the statement runs as plain SQL, leaving
    # nothing behind on the server session: behind a transaction-mode pooler a
    # PREPARE that outlived a failed run would meet the next client there.
    if name not in known and len(known) >= settings.SV_PREPARED_STATEMENTS:
        cursor.execute(
            _PLACEHOLDER.sub(r"%(p\1)s", sql), {f"p{n}": v for n, v in enumerate(params, 1)}
        )
        return
    execute = f"EXECUTE {name}({', '.join(['%s'] * len(params))})"
    text = execute if name in known else f"PREPARE {name} AS {sql}; {execute}"
    try:
        cursor.execute(text, params)
    except Exception:
        _prepared[connection] = None
        raise
    if name not in known:
        known.add(name)
        cursor.nextset()  # past PREPARE's empty result, to EXECUTE's rows
