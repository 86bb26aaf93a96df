"""Fixtures for the permissions tests: users holding given permissions, API clients for them."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from auth_app.models import Session, User
from auth_app.tokens import token_generate, token_hash
from permissions_app import services

from .factories import RoleFactory, UserFactory


def user_with(*permissions: str, **fields) -> User:
    """A new user who holds exactly `permissions` (besides the default role's)."""
    user = UserFactory(**fields)
    if permissions:
        services.role_grant(user=user, role=RoleFactory(permissions=list(permissions)))
    return user


def bearer_client(user: User) -> APIClient:
    """An API client signed in as `user` through a session row made directly."""
    token = token_generate()
    Session.objects.create(
        user=user, token_hash=token_hash(token), expires_at=timezone.now() + timedelta(hours=1)
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.fixture
def api():
    """`api(*permissions)`: (client, user) for a new user holding those permissions."""

    def make(*permissions: str, **fields):
        user = user_with(*permissions, **fields)
        return bearer_client(user), user

    return make


class Clock:
    """The permissions domain's clock, moved by hand."""

    def __init__(self):
        self.now = timezone.now()

    def __call__(self):
        return self.now

    def advance(self, **delta):
        self.now += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr("permissions_app.selectors.clock", clock)
    return clock
