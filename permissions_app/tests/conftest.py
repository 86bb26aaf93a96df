"""Fixtures for the permissions tests: users holding given permissions, API clients for them."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.support import bearer_client, user_with


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
    monkeypatch.setattr("permissions_app.selectors._now", clock)
    return clock
