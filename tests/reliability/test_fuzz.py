"""Fuzz every API operation from its OpenAPI description with every schemathesis check.

Positive and negative data, response schemas, status codes, media types, headers,
and the stateful phase over the document's links. The one check replaced is
positive-data acceptance: a schema-valid request may still break a rule no JSON
Schema can state (`x-unstated-rules`, each described in its operation's
description), and is then refused with a 400 naming exactly that rule; any other
refusal of schema-valid data fails as before.
"""

import logging

import pytest
import schemathesis
from django.conf import settings as django_settings
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from auth_app.services import session_create
from permissions_app.models import Role
from platform_app.flows import user_onboard
from sv_sdk.api.schema import UNSTATED_RULES
from sv_sdk.wsgi import application

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
# A body over SV_API_MAX_BODY_BYTES is refused before it is read (413): a refusal too.
schema.config.checks.negative_data_rejection.expected_statuses.append("413")
# The session the running test signs in with (the fixtures set it).
_SIGNED_IN = {"token": None}


@schema.auth()
class SessionToken:
    """Sign every request in with the current test's session, as `bearerAuth`."""

    def get(self, case, context):
        return _SIGNED_IN["token"]

    def set(self, case, data, context):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


# Operations that end the caller's own session: fuzzed in a run of their own, each
# example with a fresh session of a fresh user, so the main run keeps its own.
SESSION_ENDING = [
    "auth_sign_out",
    "auth_change_password",
    "auth_session_revoke",
    "auth_sessions_revoke_others",
]
SYSTEM_ROLE_CORE = {
    "admin": {"*"},
    "user": {"profile:read", "profile:write"},
    "auditor": {"audit:read", "audit:export"},
}
EXAMPLES = hypothesis_settings(
    max_examples=django_settings.SV_FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)


@schemathesis.check
def positive_data_accepted_unless_an_unstated_rule(ctx, response, case):
    """positive_data_acceptance, except a 400 that names one of the operation's unstated rules."""
    if response.status_code == 400:
        rules = set(case.operation.definition.raw.get(UNSTATED_RULES, ()))
        body = response.json()
        named = set(body.get("errors", {})) or {body.get("code")}
        if named <= rules or body.get("code") in rules:
            return None
    return positive_data_acceptance(ctx, response, case)


def _validate(case, response):
    case.validate_response(
        response,
        additional_checks=[positive_data_accepted_unless_an_unstated_rule],
        excluded_checks=[positive_data_acceptance],
    )


class ServerErrors(logging.Handler):
    """Every 5xx Django logs while the fuzz runs: the fuzzer does not always flag them."""

    def __init__(self):
        super().__init__(level=logging.ERROR)
        self.lines = []

    def emit(self, record):
        if getattr(record, "status_code", 500) >= 500:
            self.lines.append(record.getMessage())


@pytest.fixture(autouse=True)
def server_log():
    handler = ServerErrors()
    logger = logging.getLogger("django.request")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)
    assert handler.lines == [], f"the server answered 500: {handler.lines[:5]}"


@pytest.fixture
def no_rate_limits(settings):
    # Fuzzing from one address would only measure the rate limiter.
    settings.SV_RATE_LIMITS_ENABLED = False


@pytest.fixture
def superuser_token(db, no_rate_limits):
    user = user_onboard(email="fuzz-admin@example.com", is_superuser=True)
    _session, token = session_create(user=user)
    _SIGNED_IN["token"] = token
    return token


@pytest.fixture
def fresh_user(db, no_rate_limits):
    return user_onboard(email="fuzz-session@example.com", password="correct horse battery staple")


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
@schema.exclude(operation_id=SESSION_ENDING).parametrize()
@EXAMPLES
def test_every_operation_answers_as_documented(case, superuser_token):
    # Paths with an id get made-up ids: 404s are fine, as long as they are documented.
    _validate(case, case.call())


@pytest.mark.django_db
@schema.include(operation_id=SESSION_ENDING).parametrize()
@EXAMPLES
def test_operations_that_end_the_callers_session_answer_as_documented(case, fresh_user):
    _session, _SIGNED_IN["token"] = session_create(user=fresh_user)
    _validate(case, case.call())


@pytest.mark.django_db
def test_sequences_along_the_links_answer_as_documented(superuser_token):
    followed, broken = [], []

    class Links(schema.exclude(operation_id=SESSION_ENDING).as_state_machine()):
        # Each sequence starts from the same database: what one created cannot change
        # which steps the next can take, which Hypothesis would report as flaky generation.
        def setup(self):
            self.savepoint = transaction.savepoint()

        def teardown(self):
            # A list's first role is `admin`, so sequences do reach the system roles; the
            # server must refuse to take their core away, even from a superuser.
            held = dict(Role.objects.filter(is_system=True).values_list("name", "permissions"))
            broken.extend(
                name for name, core in SYSTEM_ROLE_CORE.items() if not core <= set(held[name])
            )
            transaction.savepoint_rollback(self.savepoint)

        def step(self, input):
            if input.transition is not None:  # a link, the document's or one inferred
                followed.append(input.transition.id)
            return super().step(input)

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            _validate(case, response)

    Links.run(
        settings=hypothesis_settings(
            max_examples=django_settings.SV_FUZZ_EXAMPLES,
            stateful_step_count=10,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
        )
    )
    assert followed, "no step followed a link"
    assert not broken, f"system roles lost their core: {sorted(set(broken))}"
