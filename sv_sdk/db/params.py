"""libpq connection arguments for a DATABASES entry, for code that connects with psycopg itself."""

# Options Django consumes itself; everything else in OPTIONS (sslmode, host, ...) is for libpq.
_DJANGO_OPTIONS = frozenset({"pool", "isolation_level", "server_side_binding", "assume_role"})


def connect_params(database: dict, *, connect_timeout: int | None = None) -> dict:
    """psycopg.connect() (or make_conninfo) arguments for `database`: no pool, the libpq
    options kept, unset values left out."""
    options = {k: v for k, v in database.get("OPTIONS", {}).items() if k not in _DJANGO_OPTIONS}
    params = {
        "dbname": database["NAME"],
        "host": database.get("HOST") or None,
        "port": database.get("PORT") or None,
        "user": database.get("USER") or None,
        "password": database.get("PASSWORD") or None,
        "connect_timeout": connect_timeout,
        **options,
    }
    return {k: v for k, v in params.items() if v is not None}
