"""Fixtures of the email tests: a real SMTP server, users holding given permissions."""

import importlib

import pytest
from django.apps import apps

from reliability.mail import SmtpServer
from tests import support


@pytest.fixture
def smtp(settings):
    """A running SMTP server that Django's SMTP backend delivers to."""
    server = SmtpServer()
    server.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = server.port
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 5
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _test_email_template(request):
    # Transactional tests flush every table; the root conftest restores the
    # templates of 0002, this puts back the one of 0004.
    if request.node.get_closest_marker("django_db") is None:
        return
    request.getfixturevalue("_database_defaults")
    module = importlib.import_module("email_app.migrations.0004_test_email_template")
    module.create_template(apps, None)


@pytest.fixture
def user_with():
    """tests.support.user_with, for the tests that take it as a fixture."""
    return support.user_with
