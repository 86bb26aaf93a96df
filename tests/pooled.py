"""Run the API's tests through PgBouncer in transaction mode: `python -m tests.pooled` (make test).

PgBouncer is started in front of the server the suite uses (DATABASE_URL's, or the embedded
one), and the tests connect through it with DATABASE_DIRECT_URL set, as a deployment behind a
pooler does. Their database is created and dropped directly, not through PgBouncer, whose
server connections would keep it open.
"""

import os
import subprocess
import sys

import environ
import psycopg

from reliability.servers import PGBOUNCER, ROOT, PgBouncer, postgres_url
from sv_sdk import env as sv_env

# The API's test modules: every endpoint, its problems and its query counts.
MODULES = [
    "auth_app/tests/test_api.py",
    "permissions_app/tests/test_api.py",
    "email_app/tests/test_api.py",
    "audit_app/tests/test_api.py",
    "tests/test_api_contract.py",
]
DATABASE = "sv_sdk_pooled"


def _server() -> dict:
    if sv_env.DATABASE_URL:
        return environ.Env.db_url_config(sv_env.DATABASE_URL)
    from sv_sdk.db.embedded import ensure_server

    return ensure_server(sv_env.DATA_DIR)


def _drop_test_database(server: dict) -> None:
    with psycopg.connect(postgres_url(server, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "test_{DATABASE}" WITH (FORCE)')


def main() -> int:
    if PGBOUNCER is None:
        print(
            "tests.pooled: no pgbouncer (make test installs Debian's package as root with"
            " apt-get); the API tests through PgBouncer are skipped"
        )
        return 0
    server = _server()
    _drop_test_database(server)
    bouncer = PgBouncer.in_front_of(server)
    environment = {
        **os.environ,
        "DATABASE_URL": bouncer.url(
            DATABASE, user=server.get("USER") or "postgres", password=server.get("PASSWORD") or ""
        ),
        "DATABASE_DIRECT_URL": postgres_url(server, DATABASE),
    }
    print(f"== the API tests through PgBouncer (transaction mode) on port {bouncer.port}")
    try:
        # --reuse-db: pytest-django creates the database (through PgBouncer) and leaves it;
        # dropping it is done here, directly, once PgBouncer has let go of it.
        return subprocess.call(  # noqa: S603
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--reuse-db", *MODULES],
            cwd=ROOT,
            env=environment,
        )
    finally:
        bouncer.close()
        _drop_test_database(server)


if __name__ == "__main__":
    sys.exit(main())
