"""Password hashing at sign-up and sign-in holds no database connection or transaction."""

import pytest
from django.contrib.auth.hashers import MD5PasswordHasher
from django.db import connections
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "a long enough passphrase 42"


class WatchingHasher(MD5PasswordHasher):
    """A fast hasher that notes, each time it hashes, what the request holds meanwhile."""

    seen: list[tuple[bool, bool]] = []

    def encode(self, password, salt):
        connection = connections["default"]
        self.seen.append((connection.connection is not None, connection.in_atomic_block))
        return super().encode(password, salt)


@pytest.fixture
def watching(settings):
    settings.PASSWORD_HASHERS = [f"{__name__}.WatchingHasher"]
    WatchingHasher.seen = []
    return WatchingHasher.seen


def test_sign_up_hashes_the_password_before_its_transaction_takes_a_connection(watching):
    response = APIClient(REMOTE_ADDR="198.51.100.1").post(
        "/api/v1/auth/sign-up",
        {"email": "new@example.com", "password": PASSWORD, "name": "New"},
        format="json",
    )

    assert response.status_code == 201
    # The rate limit's query ran first; its connection went back to the pool.
    assert watching == [(False, False)]


def test_sign_in_checks_the_password_without_holding_a_connection(watching):
    client = APIClient(REMOTE_ADDR="198.51.100.2")
    client.post(
        "/api/v1/auth/sign-up",
        {"email": "back@example.com", "password": PASSWORD, "name": "Back"},
        format="json",
    )
    watching.clear()

    right = client.post(
        "/api/v1/auth/sign-in", {"email": "back@example.com", "password": PASSWORD}, format="json"
    )
    wrong = client.post(
        "/api/v1/auth/sign-in", {"email": "back@example.com", "password": "nope"}, format="json"
    )
    unknown = client.post(
        "/api/v1/auth/sign-in", {"email": "who@example.com", "password": PASSWORD}, format="json"
    )

    assert (right.status_code, wrong.status_code, unknown.status_code) == (200, 401, 401)
    assert watching == [(False, False)] * 3
