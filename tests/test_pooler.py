"""PgBouncer in transaction mode in front of the test database: the API through it, kept
prepared statements refused there, a restart under load, and the job worker going around it."""

import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from django.conf import settings

from auth_app.models import User
from permissions_app.services import role_grant
from permissions_app.tests.factories import RoleFactory
from reliability.servers import (
    PGBOUNCER,
    ROOT,
    PgBouncer,
    app_environment,
    database_url,
    gunicorn,
)
from tests.support import PASSWORD, fetch, wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        PGBOUNCER is None,
        reason="pgbouncer is not installed (make test installs Debian's package when it runs"
        " as root with apt-get)",
    ),
]


def in_front_of_the_test_database() -> PgBouncer:
    # One server connection for every client: consecutive transactions of one app connection
    # meet other clients' sessions, as they do under load with a bigger pool.
    return PgBouncer.in_front_of(settings.DATABASES["default"], pool_size=1)


@pytest.fixture(scope="module")
def bouncer(django_db_setup):
    bouncer = in_front_of_the_test_database()
    yield bouncer
    bouncer.close()


def pooled_environment(bouncer: PgBouncer, **extra: str) -> dict[str, str]:
    db = settings.DATABASES["default"]
    return {
        **app_environment(bouncer.url(db["NAME"], user=db["USER"], password=db["PASSWORD"])),
        "DATABASE_DIRECT_URL": database_url(),
        **extra,
    }


@pytest.fixture(scope="module")
def pooled_app(bouncer):
    with gunicorn(pooled_environment(bouncer), workers=2) as base:
        yield base


def signed_up(base: str, email: str, *permissions: str) -> str:
    status, body = fetch(
        f"{base}/api/v1/auth/sign-up", body={"email": email, "password": PASSWORD, "name": "P"}
    )
    assert status == 201, body
    if permissions:
        role_grant(
            user=User.objects.get(email=email), role=RoleFactory(permissions=list(permissions))
        )
    return body["session"]["token"]


def hot_reads(base: str, token: str, *, count: int) -> list[tuple[int, object]]:
    """The session check and the users list, `count` of each, from 6 clients at once."""
    paths = ["/api/v1/auth/session", "/api/v1/users?limit=5"] * count
    with ThreadPoolExecutor(6) as pool:
        return list(pool.map(lambda path: fetch(base + path, token=token), paths))


def test_sign_up_and_the_prepared_hot_reads_work_through_pgbouncer(pooled_app):
    token = signed_up(pooled_app, "pooled@example.com", "users:read")

    answers = hot_reads(pooled_app, token, count=40)

    assert [status for status, _ in answers] == [200] * 80
    listed = next(body for status, body in answers if "results" in body)
    assert [user["email"] for user in listed["results"]] == ["pooled@example.com"]


def test_kept_prepared_statements_would_fail_behind_pgbouncer():
    # What DATABASE_DIRECT_URL turns off: with statements kept per app connection, a second
    # app connection meets a server session that already has them, or the first one loses them.
    # A PgBouncer of its own: the server session keeps what this test leaves prepared.
    bouncer = in_front_of_the_test_database()
    try:
        environment = pooled_environment(bouncer, DATABASE_PREPARED_STATEMENTS="32")
        with gunicorn(environment, workers=2) as base:
            token = signed_up(base, "kept@example.com", "users:read")
            statuses = [status for status, _ in hot_reads(base, token, count=40)]
    finally:
        bouncer.close()

    assert 503 in statuses


def under_load(base: str, token: str, during) -> list[tuple[float, int, object]]:
    """(moment, status, body) of the session checks 4 clients make while `during` runs."""
    answers: list[tuple[float, int, object]] = []
    stop = threading.Event()

    def client():
        while not stop.is_set():
            status, body = fetch(f"{base}/api/v1/auth/session", token=token, timeout=30)
            answers.append((time.monotonic(), status, body))

    threads = [threading.Thread(target=client) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(1)
    during()
    time.sleep(3)
    stop.set()
    for thread in threads:
        thread.join()
    return answers


def test_an_online_pgbouncer_restart_under_load_fails_no_request(bouncer, pooled_app):
    token = signed_up(pooled_app, "online@example.com")

    answers = under_load(pooled_app, token, lambda: bouncer.restart(online=True))

    assert len(answers) > 20
    assert {status for _, status, _ in answers} == {200}


def test_requests_recover_after_pgbouncer_is_stopped_and_started_under_load(bouncer, pooled_app):
    token = signed_up(pooled_app, "restart@example.com")
    restarted = []

    def restart():
        bouncer.restart()
        restarted.append(time.monotonic())

    answers = under_load(pooled_app, token, restart)
    print(
        "RESTART",
        sorted((s, sum(1 for _, x, _ in answers if x == s)) for s in {x for _, x, _ in answers}),
    )

    # A request whose connection PgBouncer cut gets the problem that says to retry, never a
    # 500; the ones that start while it is down wait for it (the pool checks a connection
    # before handing it out), and a second later everything answers again.
    assert {status for _, status, _ in answers} <= {200, 503}
    assert all(
        body["code"] == "service_unavailable" for _, status, body in answers if status == 503
    )
    late = [status for moment, status, _ in answers if moment > restarted[0] + 1]
    assert late and set(late) == {200}


def test_the_job_worker_listens_on_a_direct_connection(bouncer):
    marked = database_url() + ("&" if "?" in database_url() else "?") + "application_name="
    environment = {
        **pooled_environment(bouncer),
        "DATABASE_DIRECT_URL": marked + "sv-direct",
    }
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "procrastinate", "worker"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def listeners():
            with psycopg.connect(database_url(), autocommit=True) as conn:
                return conn.execute(
                    "SELECT application_name FROM pg_stat_activity"
                    " WHERE datname = current_database() AND query ILIKE '%%LISTEN%%'"
                    " AND pid <> pg_backend_pid()"
                ).fetchall()

        found = wait_until(listeners, seconds=30)
    finally:
        worker.terminate()
        worker.wait(timeout=30)

    assert found and {name for (name,) in found} == {"sv-direct"}
