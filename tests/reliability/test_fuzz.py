"""Fuzz every API operation from its OpenAPI description: no 5xx, every answer as documented."""

import pytest
import schemathesis
from django.conf import settings as django_settings
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from auth_app.services import session_create
from platform_app.flows import user_onboard
from sv_sdk.wsgi import application

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)

# What the API promises: never a server error, and every answer (status, media type,
# headers, body) as its OpenAPI description says. Schemathesis's opinions beyond that
# (e.g. that any schema-valid password must be accepted) are not checked.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture
def superuser_token(db, settings):
    # Fuzzing from one address would only measure the rate limiter.
    settings.SV_RATE_LIMITS_ENABLED = False
    user = user_onboard(email="fuzz-admin@example.com", is_superuser=True)
    _session, token = session_create(user=user)
    return token


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    # schemathesis calls the WSGI app directly, not through Django's test client,
    # so Django would close (hand back to the pool) the connection holding the
    # test's transaction at the end of each request. Django's client avoids it
    # the same way.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.mark.django_db
@schema.parametrize()
@hypothesis_settings(
    max_examples=django_settings.SV_FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_every_operation_answers_as_documented(case, superuser_token):
    # Paths with an id get made-up ids: 404s are fine, as long as they are documented.
    case.call_and_validate(headers={"Authorization": f"Bearer {superuser_token}"})
