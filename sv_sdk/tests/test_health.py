"""/healthz and /readyz: what a load balancer sees, in-process against the test database."""

import logging

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.test import Client

pytestmark = pytest.mark.django_db(transaction=True)


def register_worker(seconds_ago: int = 0) -> None:
    """What a starting Procrastinate worker does (its own SQL function), aged if asked."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT procrastinate_register_worker_v1()")
        (worker_id,) = cursor.fetchone()
        cursor.execute(
            "UPDATE procrastinate_workers SET last_heartbeat = now() - make_interval(secs => %s)"
            " WHERE id = %s",
            [seconds_ago, worker_id],
        )


@pytest.fixture(autouse=True)
def _no_workers():
    # Flushes leave Procrastinate's tables alone; start and end without registered workers.
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM procrastinate_workers")
    yield
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM procrastinate_workers")


def test_healthz_answers_without_touching_the_database(django_assert_num_queries):
    with django_assert_num_queries(0):
        response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_ready_with_a_migrated_database_and_a_fresh_worker_heartbeat():
    register_worker()
    response = Client().get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "ready"}


def test_readyz_without_a_worker_is_503_naming_the_worker():
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "not_ready"
    assert set(body["checks"]) == {"worker"}


def test_readyz_with_a_stale_worker_heartbeat_is_503(settings):
    settings.SV_WORKER_HEARTBEAT_MAX_AGE = 60
    register_worker(seconds_ago=300)
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert "last reported 300 s ago" in response.json()["checks"]["worker"]


def test_readyz_turns_503_while_a_migration_is_pending_and_200_once_applied():
    register_worker()
    # Unapply email_app's newest migration, whichever it is.
    graph = MigrationLoader(connection).graph
    newest = graph.leaf_nodes("email_app")[0]
    (parent,) = [node for node in graph.node_map[newest].parents if node[0] == "email_app"]
    call_command("migrate", "email_app", parent[1], verbosity=0)
    try:
        response = Client().get("/readyz")
        assert response.status_code == 503
        assert response.json()["checks"] == {"migrations": "1 migration(s) not applied."}
    finally:
        call_command("migrate", "email_app", verbosity=0)
    assert Client().get("/readyz").status_code == 200


def test_probes_skip_the_host_check_and_the_https_redirect_and_are_not_logged(settings, caplog):
    settings.ALLOWED_HOSTS = ["sv.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    register_worker()
    probe = Client(HTTP_HOST="10.1.2.3:8000")
    with caplog.at_level(logging.INFO):
        assert probe.get("/healthz").status_code == 200
        assert probe.get("/readyz").status_code == 200
    assert caplog.records == []
    # Everything else still gets both.
    assert probe.get("/api/v1/auth/session").status_code == 400
    assert Client(HTTP_HOST="sv.example.com").get("/api/v1/auth/session").status_code == 301


def test_a_probe_refuses_other_methods():
    response = Client().post("/healthz")
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"
