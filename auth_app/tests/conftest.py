"""Fixtures for the identity API tests."""

import itertools

import pytest
from rest_framework.test import APIClient

from platform_app.flows import user_onboard
from tests.support import PASSWORD

_ips = (f"198.51.100.{i}" for i in itertools.count(1))


@pytest.fixture
def client():
    # Each test client gets its own address so per-IP rate limits don't leak between calls
    # that a test does not mean to rate limit.
    return APIClient(REMOTE_ADDR=next(_ips))


@pytest.fixture
def user():
    return user_onboard(email="ada@example.com", password=PASSWORD, name="Ada")


@pytest.fixture
def signed_in(client, user):
    """(client with a Bearer token, token) for `user`."""
    response = client.post(
        "/api/v1/auth/sign-in", {"email": user.email, "password": PASSWORD}, format="json"
    )
    assert response.status_code == 200, response.content
    token = response.json()["session"]["token"]
    authed = APIClient(REMOTE_ADDR=next(_ips))
    authed.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return authed, token


def new_ip() -> str:
    return next(_ips)
