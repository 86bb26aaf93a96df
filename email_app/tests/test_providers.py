"""Sending through each ESP's API (a local stand-in speaks it): success, and each class of error."""

import base64
from dataclasses import dataclass
from urllib.parse import unquote_plus

import pytest

from audit_app.models import AuditLog
from email_app import services
from email_app.models import EmailSend

from .esp import Answer, StandIn

pytestmark = pytest.mark.django_db

TIMEOUT = 0.5  # seconds; the stand-in's slow answer takes longer


@dataclass
class Esp:
    name: str
    backend: str
    ok: Answer
    message_id: str
    invalid_recipient: Answer
    reason: str  # the provider's words for the invalid recipient, kept on the send
    rate_limited: Answer
    server_error: Answer
    path: str

    def configure(self, settings, url: str) -> None:
        settings.EMAIL_BACKEND = self.backend
        settings.ANYMAIL = {**_ANYMAIL[self.name](url), "REQUESTS_TIMEOUT": TIMEOUT}


_ANYMAIL = {
    "resend": lambda url: {"RESEND_API_KEY": "re_test_key", "RESEND_API_URL": f"{url}/"},
    "postmark": lambda url: {"POSTMARK_SERVER_TOKEN": "pm-token", "POSTMARK_API_URL": f"{url}/"},
    "mailgun": lambda url: {
        "MAILGUN_API_KEY": "key-test",
        "MAILGUN_SENDER_DOMAIN": "mg.example.com",
        "MAILGUN_API_URL": f"{url}/v3",
    },
    "amazon_ses": lambda url: {
        "AMAZON_SES_CLIENT_PARAMS": {
            "endpoint_url": url,
            "region_name": "eu-west-1",
            "aws_access_key_id": "AKIDEXAMPLE",
            "aws_secret_access_key": "not-a-real-secret",
            "config": {
                "retries": {"total_max_attempts": 1},
                "read_timeout": TIMEOUT,
                "connect_timeout": TIMEOUT,
            },
        }
    },
}


def _ses_error(status: int, kind: str, message: str) -> Answer:
    return Answer(status, {"message": message}, headers={"x-amzn-ErrorType": kind})


ESPS = [
    Esp(
        name="resend",
        backend="anymail.backends.resend.EmailBackend",
        ok=Answer(200, {"id": "4ef9a417-02e9-4d39-ad75-9611e0fcc33c"}),
        message_id="4ef9a417-02e9-4d39-ad75-9611e0fcc33c",
        invalid_recipient=Answer(
            422,
            {
                "statusCode": 422,
                "name": "validation_error",
                "message": "Invalid `to` field. The email address needs to follow the"
                " `email@example.com` or `Name <email@example.com>` format.",
            },
        ),
        reason="Invalid `to` field",
        rate_limited=Answer(
            429,
            {
                "statusCode": 429,
                "name": "rate_limit_exceeded",
                "message": "Too many requests. You can only make 2 requests per second.",
            },
            headers={"Retry-After": "1"},
        ),
        server_error=Answer(
            500, {"statusCode": 500, "name": "application_error", "message": "Internal error"}
        ),
        path="/emails",
    ),
    Esp(
        name="postmark",
        backend="anymail.backends.postmark.EmailBackend",
        ok=Answer(
            200,
            {
                "To": "reader@example.com",
                "SubmittedAt": "2026-11-29T04:00:00.0000000-05:00",
                "MessageID": "b7bc2f4a-e38e-4336-af7d-e6c392c2f817",
                "ErrorCode": 0,
                "Message": "OK",
            },
        ),
        message_id="b7bc2f4a-e38e-4336-af7d-e6c392c2f817",
        invalid_recipient=Answer(
            422,
            {
                "ErrorCode": 406,
                "Message": "You tried to send to recipient(s) that have been marked as"
                " inactive. Found inactive addresses: reader@example.com. Inactive"
                " recipients are ones that have generated a hard bounce, a spam complaint,"
                " or a manual suppression.",
            },
        ),
        reason="marked as inactive",
        rate_limited=Answer(429, {"ErrorCode": 429, "Message": "Rate limit exceeded."}),
        server_error=Answer(500, {"ErrorCode": 500, "Message": "Internal server error."}),
        path="/email",
    ),
    Esp(
        name="mailgun",
        backend="anymail.backends.mailgun.EmailBackend",
        ok=Answer(
            200,
            {
                "id": "<20261129044200.1.5C0FFEE@mg.example.com>",
                "message": "Queued. Thank you.",
            },
        ),
        message_id="<20261129044200.1.5C0FFEE@mg.example.com>",
        invalid_recipient=Answer(
            400, {"message": "to parameter is not a valid address. please check documentation"}
        ),
        reason="to parameter is not a valid address",
        rate_limited=Answer(429, {"message": "Too many requests"}),
        server_error=Answer(503, {"message": "Service Unavailable"}),
        path="/v3/mg.example.com/messages",
    ),
    Esp(
        name="amazon_ses",
        backend="anymail.backends.amazon_ses.EmailBackend",
        ok=Answer(200, {"MessageId": "0102018b2f3e4d5a-6b7c8d9e-0000-0000-0000-000000000000"}),
        message_id="0102018b2f3e4d5a-6b7c8d9e-0000-0000-0000-000000000000",
        invalid_recipient=_ses_error(400, "BadRequestException", "Illegal address"),
        reason="BadRequestException: Illegal address",
        rate_limited=_ses_error(429, "TooManyRequestsException", "Maximum sending rate exceeded."),
        server_error=_ses_error(500, "InternalFailure", "An internal error occurred."),
        path="/v2/email/outbound-emails",
    ),
]


@pytest.fixture(params=ESPS, ids=lambda esp: esp.name)
def esp(request, settings):
    with StandIn(default=request.param.ok) as stand_in:
        request.param.configure(settings, stand_in.url)
        settings.SV_EMAIL_RETRY_BASE_SECONDS = 30
        yield request.param, stand_in


def carried(request) -> str:
    """What the API call carried, readable: Mailgun posts a form, SES raw MIME in base64."""
    text = unquote_plus(request.body.decode())
    if request.path.startswith("/v2/email/"):
        text += base64.b64decode(request.json()["Content"]["Raw"]["Data"]).decode()
    return text


def queued(to: str = "reader@example.com") -> EmailSend:
    return services.email_queue(
        to_email=to, category="product", template_key="welcome", context={"user_name": "Ada"}
    )


def test_a_send_goes_to_the_esps_api_and_records_its_message_id(esp):
    config, stand_in = esp
    send = queued()

    services.email_deliver(send_id=send.pk)

    (request,) = stand_in.requests
    assert (request.method, request.path) == ("POST", config.path)
    assert "reader@example.com" in carried(request)
    assert send.pk in carried(request)  # the metadata the webhooks echo back
    send.refresh_from_db()
    assert (send.status, send.provider, send.provider_message_id) == (
        "sent",
        config.name,
        config.message_id,
    )
    assert AuditLog.objects.filter(event_type="email.sent", target_id=send.pk).exists()


@pytest.mark.parametrize("answer", ["rate_limited", "server_error"])
def test_a_rate_limit_or_server_error_is_retried_with_backoff_and_then_goes_through(esp, answer):
    config, stand_in = esp
    send = queued()
    stand_in.answers = [getattr(config, answer), getattr(config, answer)]

    with pytest.raises(services.DeliveryDeferred) as first:
        services.email_deliver(send_id=send.pk)
    with pytest.raises(services.DeliveryDeferred) as second:
        services.email_deliver(send_id=send.pk)

    assert (first.value.retry_in, second.value.retry_in) == (30, 60)
    send.refresh_from_db()
    assert send.status == "deferred"
    assert str(getattr(config, answer).status) in send.last_error

    services.email_deliver(send_id=send.pk)

    send.refresh_from_db()
    assert (send.status, send.attempts, send.last_error) == ("sent", 3, "")
    assert len(stand_in.requests) == 3


def test_a_rate_limit_that_says_when_to_come_back_is_not_retried_sooner(esp):
    config, stand_in = esp
    send = queued()
    limited = config.rate_limited
    stand_in.answers = [Answer(429, limited.body, {**limited.headers, "Retry-After": "300"})]

    with pytest.raises(services.DeliveryDeferred) as deferred:
        services.email_deliver(send_id=send.pk)

    assert deferred.value.retry_in == 300  # not the first backoff step, 30 s
    send.refresh_from_db()
    assert round((send.scheduled_at - send.updated_at).total_seconds(), -1) == 300


def test_an_invalid_recipient_fails_the_send_at_once_with_the_providers_reason(esp):
    config, stand_in = esp
    send = queued()
    stand_in.answers = [config.invalid_recipient]

    services.email_deliver(send_id=send.pk)  # no DeliveryDeferred: nothing to retry

    send.refresh_from_db()
    assert (send.status, send.attempts) == ("failed", 1)
    assert config.reason in send.last_error
    assert len(stand_in.requests) == 1
    assert AuditLog.objects.filter(event_type="email.failed", target_id=send.pk).exists()


def test_a_timeout_is_maybe_sent_and_retried_under_the_doubt_window_rules(esp):
    config, stand_in = esp
    send = queued()
    stand_in.answers = [Answer(200, config.ok.body, delay=TIMEOUT * 3)]

    with pytest.raises(services.DeliveryDeferred):
        services.email_deliver(send_id=send.pk)

    send.refresh_from_db()
    assert send.status == "deferred"
    assert send.last_error.startswith("timed out, the message may have been sent")
    services.email_deliver(send_id=send.pk)
    send.refresh_from_db()
    assert send.status == "sent"
    # Both attempts carry the same send id, so provider events of either find this send.
    first, second = stand_in.requests
    assert send.pk in carried(first) and send.pk in carried(second)
