"""Fixtures for the top layer's tests: the identity API's clients and user."""

from auth_app.tests.conftest import client, user  # noqa: F401 (fixtures, shared)
