"""Read replicas on a real streaming replica of the test server (pg_basebackup -R): lag-tolerant
reads go to it, a client reads its own writes, security checks stay on the primary, and a
replica that dies or falls behind costs no error."""

import threading
import time
from collections import Counter

import pytest
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.test.utils import CaptureQueriesContext
from prometheus_client import REGISTRY
from rest_framework.test import APIClient

from auth_app.services import session_create
from permissions_app.models import Role
from permissions_app.services import role_revoke
from reliability.replica import ReplicaUnavailable, StreamingReplica
from sv_sdk.db import replicas
from sv_sdk.db.replicas import HEADER, lag_tolerant, lsn_value
from tests.support import admin_client_for, bearer_client, staff, user_with
from tests.test_db_roles import server_params

ALIAS = "replica_1"
# The replica's alias is a test mirror of the default database: nothing creates or flushes it.
pytestmark = pytest.mark.django_db(transaction=True, databases=[DEFAULT_DB_ALIAS, ALIAS])
USERS = "/api/v1/users"
CHANGE_LIST = "/admin/auth_app/user/"


@pytest.fixture(scope="module")
def replica(django_db_setup, django_db_blocker):
    """A streaming replica of the test server, under the alias DATABASE_REPLICA_URLS would
    give it (set up before each test's database access, which checks the aliases)."""
    with django_db_blocker.unblock():
        params = {k: v for k, v in server_params().items() if v is not None and k != "dbname"}
        try:
            server = StreamingReplica(params)
        except ReplicaUnavailable as exc:
            pytest.skip(f"no streaming replica here: {exc}")
    connections.settings[ALIAS] = {
        **connections.settings[DEFAULT_DB_ALIAS],
        "HOST": server.host,
        "PORT": str(server.port),
        # As sv_sdk.settings.base configures replicas: a read blocked by replay fails in 1 s.
        "OPTIONS": {"connect_timeout": 2, "options": "-c lock_timeout=1000"},
        "CONN_MAX_AGE": 600,
        "TEST": {**connections.settings[DEFAULT_DB_ALIAS]["TEST"], "MIRROR": DEFAULT_DB_ALIAS},
    }
    yield server
    with django_db_blocker.unblock():
        connections[ALIAS].close()
        del connections.settings[ALIAS]
        server.close()


@pytest.fixture
def routed(replica, settings, monkeypatch):
    """The replica in the rotation, checked every 0.1 s."""
    settings.SV_DATABASE_REPLICAS = [ALIAS]
    settings.SV_REPLICA_CHECK_INTERVAL = 0.1
    settings.SV_REPLICA_MAX_LAG = 30.0
    settings.SV_RATE_LIMITS_ENABLED = False
    monkeypatch.setattr(replicas, "MONITOR", replicas.ReplicaMonitor())
    yield replica
    replica.resume()
    connections[ALIAS].close()


def queries_on_users(captured) -> list[str]:
    """The captured reads of users: by the ORM, or the users list's prepared statement
    (`EXECUTE sv_users_...` once the connection has prepared it)."""
    return [
        q["sql"]
        for q in captured.captured_queries
        if '"auth"."users"' in q["sql"] or "sv_users_" in q["sql"]
    ]


def sign_up(email: str) -> str:
    """Sign `email` up through the API; the response's WAL position, as the client keeps it."""
    response = APIClient().post(
        "/api/v1/auth/sign-up",
        {"email": email, "password": "a long passphrase 1", "name": "New"},
        format="json",
    )
    assert response.status_code == 201, response.content
    return response[HEADER]


def listed_emails(response) -> set[str]:
    assert response.status_code == 200, response.content
    return {user["email"] for user in response.json()["results"]}


def served(reason: str, served_by: str) -> float:
    return (
        REGISTRY.get_sample_value(
            "sv_replica_reads_total", {"served_by": served_by, "reason": reason}
        )
        or 0.0
    )


def test_a_sign_up_is_listed_through_the_replica_once_it_has_replayed_the_write(routed):
    admin = bearer_client(user_with("users:read"))
    position = sign_up("new@example.com")
    routed.wait_for(lsn_value(position))

    with CaptureQueriesContext(connections[ALIAS]) as on_replica:
        response = admin.get(USERS, HTTP_SV_READ_AFTER=position)

    assert "new@example.com" in listed_emails(response)
    assert queries_on_users(on_replica), "the list was not read from the replica"


def test_with_replay_paused_a_client_reads_its_own_write_from_the_primary(routed):
    admin = bearer_client(user_with("users:read"))
    routed.pause()
    position = sign_up("paused@example.com")

    with (
        CaptureQueriesContext(connections[ALIAS]) as on_replica,
        CaptureQueriesContext(connections[DEFAULT_DB_ALIAS]) as on_primary,
    ):
        response = admin.get(USERS, HTTP_SV_READ_AFTER=position)
    assert "paused@example.com" in listed_emails(response)
    assert not queries_on_users(on_replica) and queries_on_users(on_primary)

    # A client that has not written reads the replica, which lacks the new user.
    with CaptureQueriesContext(connections[ALIAS]) as on_replica:
        stale = admin.get(USERS)
    assert "paused@example.com" not in listed_emails(stale)
    assert queries_on_users(on_replica)

    routed.resume()


def test_the_position_comes_back_in_a_cookie_for_clients_that_send_no_header(routed):
    admin = bearer_client(user_with("users:read", "users:write"))
    routed.pause()
    created = admin.post(USERS, {"email": "cookie@example.com"}, format="json")
    assert created.status_code == 201
    assert created.cookies[replicas.COOKIE].value == created[HEADER]

    assert "cookie@example.com" in listed_emails(admin.get(USERS))


def test_an_unreadable_position_is_answered_from_the_primary(routed):
    admin = bearer_client(user_with("users:read"))
    with CaptureQueriesContext(connections[ALIAS]) as on_replica:
        response = admin.get(USERS, HTTP_SV_READ_AFTER="not a position")
    assert response.status_code == 200
    assert not queries_on_users(on_replica)


def test_the_session_check_stays_on_the_primary_so_a_sign_out_ends_the_session_at_once(routed):
    user = user_with("users:read")
    admin = bearer_client(user)
    assert admin.get(USERS).status_code == 200
    routed.pause()

    assert admin.post("/api/v1/auth/sign-out").status_code == 204
    # The replica still holds the session; the check reads the primary, which does not.
    response = admin.get(USERS)
    assert response.status_code == 401


def test_reads_inside_a_transaction_stay_on_the_primary(routed):
    user_with("users:read")
    routed.wait_for(lsn_value(replicas.primary_position()))

    @lag_tolerant
    def count_users():
        from auth_app.models import User

        return User.objects.count()

    with CaptureQueriesContext(connections[ALIAS]) as on_replica:
        assert count_users() >= 1
    assert queries_on_users(on_replica)

    with CaptureQueriesContext(connections[ALIAS]) as on_replica, transaction.atomic():
        assert count_users() >= 1
    assert not queries_on_users(on_replica)


def test_a_replica_past_the_lag_bound_leaves_the_rotation_until_it_catches_up(routed, settings):
    admin = bearer_client(user_with("users:read"))
    settings.SV_REPLICA_MAX_LAG = 1.0
    routed.pause()
    sign_up("lagging@example.com")
    time.sleep(1.5)

    with CaptureQueriesContext(connections[ALIAS]) as on_replica:
        response = admin.get(USERS)
    assert "lagging@example.com" in listed_emails(response)
    assert not queries_on_users(on_replica)
    assert replicas.MONITOR.states()[ALIAS].lag > 1.0

    routed.resume()
    deadline = time.monotonic() + 10
    while not replicas.MONITOR.in_rotation():
        assert time.monotonic() < deadline, "the replica did not come back"
        time.sleep(0.1)
    with CaptureQueriesContext(connections[ALIAS]) as on_replica:
        assert "lagging@example.com" in listed_emails(admin.get(USERS))
    assert queries_on_users(on_replica)


def test_a_replica_killed_under_load_costs_no_error_and_takes_reads_again_once_back(routed):
    user = user_with("users:read")
    tokens = [session_create(user=user)[1] for _ in range(4)]
    statuses: Counter = Counter()
    phase = {"name": "before"}
    by_phase: dict[str, Counter] = {}
    stop = threading.Event()
    lock = threading.Lock()

    def hammer(token: str) -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        try:
            # Bounded: the test stops it, and it never runs past 60 s on its own.
            deadline = time.monotonic() + 60
            while not stop.is_set() and time.monotonic() < deadline:
                status = client.get(USERS).status_code
                with lock:
                    statuses[status] += 1
        finally:
            connections.close_all()

    def snapshot(name: str) -> None:
        by_phase[name] = Counter(
            replica=served("in_rotation", "replica"),
            primary=served("no_replica", "primary") + served("replica_failed", "primary"),
        )
        phase["name"] = name

    threads = [threading.Thread(target=hammer, args=(t,)) for t in tokens]
    snapshot("start")
    for thread in threads:
        thread.start()
    try:
        time.sleep(2)
        snapshot("killed")
        routed.kill()
        time.sleep(3)
        snapshot("restarted")
        routed.start()
        time.sleep(4)
        snapshot("end")
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)

    assert statuses and set(statuses) == {200}, statuses
    before = by_phase["killed"] - by_phase["start"]
    outage = by_phase["restarted"] - by_phase["killed"]
    after = by_phase["end"] - by_phase["restarted"]
    assert before["replica"] > 0, by_phase
    assert outage["primary"] > 0, by_phase
    assert after["replica"] > 0, by_phase


def test_an_admin_change_list_reads_the_replica_and_its_permission_check_the_primary(routed):
    viewer = staff("viewer@example.com", "users:read")
    client = admin_client_for(viewer)
    routed.wait_for(lsn_value(replicas.primary_position()))
    with CaptureQueriesContext(connections[ALIAS]) as on_replica:
        assert client.get(CHANGE_LIST).status_code == 200
    assert queries_on_users(on_replica)

    routed.pause()
    role_revoke(user=viewer, role=Role.objects.get(name="viewer"))
    # The replica still says the viewer holds users:read; the check asks the primary.
    assert client.get(CHANGE_LIST).status_code == 403


def test_after_an_admin_change_the_browser_sees_it_while_the_replica_lags(routed):
    viewer = staff("editor@example.com", "users:read", "users:write")
    client = admin_client_for(viewer)
    routed.pause()
    response = client.post(
        "/admin/auth_app/user/add/",
        {"email": "added@example.com", "name": "Added", "password1": "", "password2": ""},
    )
    assert response.status_code == 302, response.content[:2000]
    assert replicas.COOKIE in response.cookies

    assert b"added@example.com" in client.get(CHANGE_LIST).content
    # Another browser, which has written nothing, reads the lagging replica.
    assert b"added@example.com" not in admin_client_for(viewer).get(CHANGE_LIST).content
