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


def _signed_in(client: APIClient, email: str) -> str:
    client.post(
        "/api/v1/auth/sign-up",
        {"email": email, "password": PASSWORD, "name": "Someone"},
        format="json",
    )
    response = client.post(
        "/api/v1/auth/sign-in", {"email": email, "password": PASSWORD}, format="json"
    )
    return response.json()["session"]["token"]


def test_a_password_change_hashes_both_passwords_outside_its_transaction(watching):
    client = APIClient(REMOTE_ADDR="198.51.100.3")
    token = _signed_in(client, "change@example.com")
    watching.clear()

    response = client.post(
        "/api/v1/auth/change-password",
        {"current_password": PASSWORD, "new_password": "another long passphrase 43"},
        format="json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )

    assert response.status_code == 204
    # The current password checked, then the new one hashed; neither with a connection.
    assert watching == [(False, False)] * 2
    signed_in = client.post(
        "/api/v1/auth/sign-in",
        {"email": "change@example.com", "password": "another long passphrase 43"},
        format="json",
    )
    assert signed_in.status_code == 200


def test_a_password_reset_hashes_before_it_uses_the_token(watching):
    from datetime import timedelta

    from auth_app.models import User
    from auth_app.services import PASSWORD_RESET, verification_create

    client = APIClient(REMOTE_ADDR="198.51.100.4")
    _signed_in(client, "reset@example.com")
    user = User.objects.get(email="reset@example.com")
    _, token = verification_create(user=user, purpose=PASSWORD_RESET, ttl=timedelta(hours=1))
    watching.clear()

    weak = client.post(
        "/api/v1/auth/reset-password", {"token": token, "new_password": "short"}, format="json"
    )
    reset = client.post(
        "/api/v1/auth/reset-password",
        {"token": token, "new_password": "a new long passphrase 44"},
        format="json",
    )
    again = client.post(
        "/api/v1/auth/reset-password",
        {"token": token, "new_password": "yet another passphrase 45"},
        format="json",
    )

    # A refused password leaves the token usable; once used, it is refused before any hash.
    assert (weak.status_code, reset.status_code, again.status_code) == (400, 200, 400)
    assert again.json()["code"] == "token_invalid"
    assert watching == [(False, False)]
