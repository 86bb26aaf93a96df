"""Log lines: JSON when asked, with the request's context, and never a secret."""

import base64
import io
import json
import logging
import logging.config
import re
import secrets

import pytest
from cryptography.fernet import Fernet
from django.conf import settings as django_settings
from django.contrib.auth.hashers import make_password
from django.core import mail
from django.test import Client
from rest_framework.test import APIClient

from auth_app.models import User
from auth_app.tokens import token_hash
from conftest import run_worker
from email_app.unsubscribe import unsubscribe_url
from platform_app.flows import password_reset_url
from sv_sdk.logs import logging_config

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a brand new passphrase 42"


def emit(message: str, value) -> str:
    """Log `message % value` through the project's handler in JSON, as the message, as an
    extra field and as an exception's text; return what it wrote."""
    stream = io.StringIO()
    logger = logging.getLogger("sv_sdk.tests.redaction")
    config = logging_config(json_lines=True, level="DEBUG")
    config["loggers"] = {logger.name: {"handlers": ["console"], "propagate": False}}
    with _configured(config, stream):
        logger.warning(message, value, extra={"detail": message % (value,)})
        try:
            raise ValueError(message % (value,))
        except ValueError:
            logger.exception("failed")
    return stream.getvalue()


class _configured:
    """Apply a logging config writing to `stream`; restore the project's afterwards."""

    def __init__(self, config: dict, stream: io.StringIO):
        self.config = config
        self.stream = stream

    def __enter__(self):
        logging.config.dictConfig(self.config)
        for handler in (
            logging.getLogger().handlers + logging.getLogger("sv_sdk.tests.redaction").handlers
        ):
            handler.setStream(self.stream)

    def __exit__(self, *exc):
        logging.config.dictConfig(django_settings.LOGGING)


def test_the_redaction_filter_removes_every_kind_of_secret_the_project_has():
    session_token = secrets.token_urlsafe(32)
    user_id = "0192f3a4-5b6c-7d8e-9f00-112233445566"
    unsubscribe = unsubscribe_url(user_id=user_id, category="product")
    unsubscribe_token = unsubscribe.rpartition("/")[2]
    fernet_key = Fernet.generate_key().decode()
    provider_id_token = ".".join(
        base64.urlsafe_b64encode(part).decode().rstrip("=")
        for part in (b'{"alg":"RS256","kid":"k1"}', b'{"sub":"12345","aud":"sv"}', b"s" * 64)
    )
    api_key = "re_" + secrets.token_urlsafe(24)
    access_token = secrets.token_urlsafe(30)
    refresh_token = "1//0g" + "x9" * 20
    signing_key = "whsec_" + secrets.token_urlsafe(24)
    encrypted = Fernet(fernet_key).encrypt(b"provider token").decode()
    password_hash = make_password(PASSWORD)
    basic = base64.b64encode(b"hook:pw").decode()
    metrics_token = "metrics-" + "t0k" * 8
    # name: (message, value logged, the secrets that must not show)
    cases = {
        "password": ("sign-in with password=%s", "hunter2-Secret", ["hunter2-Secret"]),
        "passphrase in a dict": ("payload %s", {"password": PASSWORD}, [PASSWORD]),
        "new password field": ("body %s", {"new_password": NEW_PASSWORD}, [NEW_PASSWORD]),
        "current password field": ("body %s", {"current_password": PASSWORD}, [PASSWORD]),
        "session token": ("session %s", session_token, [session_token]),
        "Authorization header": (
            "headers %s",
            {"Authorization": f"Bearer {session_token}"},
            [session_token],
        ),
        "Cookie header": (
            "Cookie: %s",
            f"sv_session={session_token}; csrftoken=abc123XYZ",
            [session_token, "abc123XYZ"],
        ),
        "reset link": ("mail says %s", password_reset_url(session_token), [session_token]),
        "verify link": (
            "mail says %s",
            f"{django_settings.SV_PUBLIC_URL}/verify-email?token={session_token}",
            [session_token],
        ),
        "unsubscribe link": ("unsubscribe %s", unsubscribe, [unsubscribe_token]),
        "bare unsubscribe token": (
            "token was %s",
            unsubscribe_token,
            [unsubscribe_token, unsubscribe_token.rpartition(":")[2]],
        ),
        "API key": ("ESP said: invalid api_key=%s", api_key, [api_key]),
        "bare API key": ("ESP refused %s", api_key, [api_key]),
        "provider access token": ("account %s", {"access_token": access_token}, [access_token]),
        "provider refresh token": (
            "account %s",
            {"refresh_token": refresh_token},
            [refresh_token],
        ),
        "provider id token": ("id_token %s", provider_id_token, [provider_id_token]),
        "webhook basic auth": ("Authorization: Basic %s", basic, [basic]),
        "webhook secret": ("SV_EMAIL_WEBHOOK_SECRET=%s", "hook:correct-horse", ["correct-horse"]),
        "webhook signing key": ("signing_key=%s", signing_key, [signing_key]),
        "encryption key": ("SV_ENCRYPTION_KEYS=%s", fernet_key, [fernet_key]),
        "bare encryption key": ("key %s", fernet_key, [fernet_key]),
        "encrypted value": ("column %s", encrypted, [encrypted]),
        "Django secret key": (
            "SECRET_KEY=%s",
            django_settings.SECRET_KEY,
            [django_settings.SECRET_KEY],
        ),
        "database password": ("connecting to %s", "postgres://sv_app:pa55word@db/sv", ["pa55word"]),
        "password hash": ("stored %s", password_hash, [password_hash.rpartition("$")[2]]),
        "token hash": ("looked up %s", token_hash(session_token), [token_hash(session_token)]),
        "metrics token": ("Authorization: Bearer %s", metrics_token, [metrics_token]),
    }
    for name, (message, value, hidden) in cases.items():
        output = emit(message, value)
        leaked = [secret for secret in hidden if secret in output]
        assert not leaked, f"{name}: {leaked} in {output}"
        assert "[redacted]" in output, name
    # Identifiers are not secrets: they stay readable.
    assert user_id in emit("user %s signed in", user_id)


@pytest.fixture
def json_log():
    """Every log line of the project, in JSON and at DEBUG, written to a string."""
    stream = io.StringIO()
    with _configured(logging_config(json_lines=True, level="DEBUG"), stream):
        yield stream


def ok(response) -> bool:
    return response.status_code < 300


def _token_in_mail(marker: str) -> str:
    for message in reversed(mail.outbox):
        found = re.search(rf"{marker}\?token=([\w:-]+)", message.body)
        if found:
            return found.group(1)
    raise AssertionError(f"no {marker} link in {len(mail.outbox)} emails")


@pytest.mark.django_db(transaction=True)
def test_a_run_through_every_flow_logs_json_lines_without_a_secret(settings, json_log):
    settings.SV_METRICS_TOKEN = metrics_token = "metrics-" + secrets.token_urlsafe(16)
    settings.ANYMAIL = {"WEBHOOK_SECRET": "hook:webhook-secret-pw"}
    stream = json_log
    secrets_seen = [PASSWORD, NEW_PASSWORD, metrics_token, "webhook-secret-pw"]
    client = APIClient(REMOTE_ADDR="203.0.113.50")

    signed_up = client.post(
        "/api/v1/auth/sign-up",
        {"email": "logged@example.com", "password": PASSWORD, "name": "L"},
        format="json",
    )
    assert signed_up.status_code == 201
    token = signed_up.json()["session"]["token"]
    user = User.objects.get(email="logged@example.com")
    run_worker()
    verify = _token_in_mail("verify-email")
    assert ok(client.post("/api/v1/auth/verify-email", {"token": verify}, format="json"))
    assert (
        client.post(
            "/api/v1/auth/sign-in",
            {"email": "logged@example.com", "password": "wrong one"},
            format="json",
        ).status_code
        == 401
    )
    signed_in = client.post(
        "/api/v1/auth/sign-in", {"email": "logged@example.com", "password": PASSWORD}, format="json"
    )
    second = signed_in.json()["session"]["token"]
    authed = APIClient(REMOTE_ADDR="203.0.113.51", HTTP_AUTHORIZATION=f"Bearer {token}")
    me = authed.get("/api/v1/auth/me")
    assert me.status_code == 200
    assert ok(authed.get("/api/v1/auth/sessions"))
    assert ok(authed.post("/api/v1/auth/sessions/revoke-others"))
    assert ok(
        authed.post(
            "/api/v1/auth/change-password",
            {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
            format="json",
        )
    )
    assert (
        client.post(
            "/api/v1/auth/forgot-password", {"email": "logged@example.com"}, format="json"
        ).status_code
        == 202
    )
    run_worker()
    reset = _token_in_mail("reset-password")
    assert ok(
        client.post(
            "/api/v1/auth/reset-password",
            {"token": reset, "new_password": PASSWORD + "!"},
            format="json",
        )
    )
    unsubscribe = unsubscribe_url(user_id=user.pk, category="product").rpartition("/")[2]
    assert Client().post(f"/api/v1/email/unsubscribe/{unsubscribe}").status_code < 300
    webhook_auth = base64.b64encode(b"hook:webhook-secret-pw").decode()
    Client().post(
        "/webhooks/anymail/postmark/tracking/",
        json.dumps({"RecordType": "Delivery", "MessageID": "unknown", "Recipient": "x@y.z"}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Basic {webhook_auth}",
    )
    assert ok(Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {metrics_token}"))
    admin = Client(REMOTE_ADDR="203.0.113.52")
    admin.post("/admin/login/", {"username": "logged@example.com", "password": PASSWORD + "!"})
    Client().get("/api/v1/no-such-path")
    secrets_seen += [token, second, verify, reset, unsubscribe, webhook_auth]
    secrets_seen += [PASSWORD + "!", token_hash(token), user.password]

    output = stream.getvalue()
    parsed = [json.loads(raw) for raw in output.splitlines()]
    assert len(parsed) >= 15
    leaked = [secret for secret in secrets_seen if secret in output]
    assert leaked == []
    requests = [line for line in parsed if line["logger"] == "sv_sdk.requests"]
    by_route = {(line["method"], line["route"]): line for line in requests}
    me_line = by_route[("GET", "/api/v1/auth/me")]
    assert me_line["request_id"] == me["X-Request-ID"]
    assert me_line["user_id"] == user.pk
    assert me_line["status"] == 200
    assert me_line["duration_ms"] > 0
    assert by_route[("GET", "unmatched")]["status"] == 404
    assert "logged@example.com" not in json.dumps(requests)
    for line in parsed:
        assert {"time", "level", "logger", "message", "request_id", "user_id"} <= set(line)


def test_text_is_the_default_format():
    config = logging_config(json_lines=False, level="INFO")
    assert config["handlers"]["console"]["formatter"] == "text"
    stream = io.StringIO()
    with _configured(config, stream):
        logging.getLogger("sv_sdk.tests").info("plain %s", "line")
    assert stream.getvalue().rstrip().endswith("INFO sv_sdk.tests: plain line")
