"""Fixtures shared by every test: real PostgreSQL, default rows, clean job queue."""

import importlib

import pytest
from django.apps import apps
from django.db import connection

from sv_sdk.db.tables import SCHEMAS
from tests import support


def pytest_addoption(parser):
    parser.addoption(
        "--fuzz-examples",
        type=int,
        default=None,
        help="examples per API operation in the fuzz test (default: settings.SV_FUZZ_EXAMPLES)",
    )


def pytest_configure(config):
    examples = config.getoption("--fuzz-examples")
    if examples:
        from django.conf import settings

        settings.SV_FUZZ_EXAMPLES = examples


_DEFAULT_ROW_MIGRATIONS = (
    ("permissions_app.migrations.0002_default_roles", "create_roles"),
    ("email_app.migrations.0002_default_templates", "create_templates"),
    ("email_app.migrations.0005_email_changed_template", "create_template"),
    ("email_app.migrations.0007_security_templates_greeting", "update_templates"),
)


def _ensure_default_rows():
    # Transactional tests end with a flush that empties every table, data
    # migration rows included; put the default roles and templates back.
    for module, function in _DEFAULT_ROW_MIGRATIONS:
        getattr(importlib.import_module(module), function)(apps, None)


@pytest.fixture(autouse=True)
def _database_defaults(request):
    marker = request.node.get_closest_marker("django_db")
    if marker is None:
        yield
        return
    request.getfixturevalue("_django_db_helper")
    _ensure_default_rows()
    yield
    if marker.kwargs.get("transaction"):
        # Procrastinate's tables are not Django-managed, so flush leaves them.
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE procrastinate_jobs CASCADE")


@pytest.fixture
def root():
    """A superuser who signs in to the admin."""
    return support.staff("root@example.com", superuser=True)


@pytest.fixture
def admin_client(root):
    """The admin, signed in as `root` (pytest-django's own would skip onboarding)."""
    return support.admin_client_for(root)


def table_counts() -> dict[str, int]:
    """Row counts of every table in the four schemas, plus the job queue."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) FROM pg_tables"
            " WHERE schemaname = ANY(%s) ORDER BY 1",
            [list(SCHEMAS)],
        )
        tables = [row[0] for row in cursor.fetchall()] + ["procrastinate_jobs"]
        counts = {}
        for table in tables:
            cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608
            counts[table] = cursor.fetchone()[0]
    return counts


def run_worker():
    """Run the Procrastinate worker until the queue is empty."""
    from procrastinate.contrib.django import app

    # The Django connector serves deferring inside transactions; a worker
    # needs a connector of its own, as `manage.py procrastinate worker` uses.
    # One job at a time, not the deployed SV_WORKER_CONCURRENCY: the tests follow jobs
    # (and their retries) in the order they run.
    with app.replace_connector(app.connector.get_worker_connector()):
        app.run_worker(
            wait=False, install_signal_handlers=False, listen_notify=False, concurrency=1
        )
