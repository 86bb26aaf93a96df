"""Each ESP's webhook: documented payloads map to statuses; forged, replayed, unknown ones do not.

The payloads follow each provider's documentation of its webhook bodies (Resend's
`email.*` events signed by Svix, Postmark's records with basic auth, Mailgun's
`event-data` with its HMAC signature block, Amazon SES events inside signed SNS
notifications).
"""

import base64
import datetime as dt
import hashlib
import hmac
import json
import re
import uuid
from datetime import UTC, datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from svix.webhooks import Webhook

from audit_app.models import AuditLog
from email_app import services
from email_app.models import EmailSend, EmailSuppression, EmailWebhook

from .esp import Answer, StandIn

pytestmark = pytest.mark.django_db

TO = "reader@example.com"
RESEND_SECRET = "whsec_" + base64.b64encode(b"resend test signing secret 0001").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"somebody else's secret key 0002").decode()
POSTMARK_AUTH = "hook:correct-horse"
MAILGUN_KEY = "mailgun-webhook-signing-key-0001"
SES_AUTH = "sns:battery-staple"
POSTMARK_URL = "/webhooks/anymail/postmark/tracking/"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def sent_send(*, provider: str, message_id: str, to: str = TO) -> EmailSend:
    send = services.email_queue(
        to_email=to, category="product", template_key="welcome", context={"user_name": "R"}
    )
    EmailSend.objects.filter(pk=send.pk).update(
        status=EmailSend.Status.SENT, provider=provider, provider_message_id=message_id
    )
    send.refresh_from_db()
    return send


def basic(auth: str) -> str:
    return "Basic " + base64.b64encode(auth.encode()).decode()


def postmark_post(client, event: dict, *, auth: str = POSTMARK_AUTH):
    return client.post(
        POSTMARK_URL,
        json.dumps(event),
        content_type="application/json",
        HTTP_AUTHORIZATION=basic(auth),
    )


def is_problem(response, status: int, code: str) -> bool:
    assert response["Content-Type"] == "application/problem+json", response.content
    body = response.json()
    assert (response.status_code, body["status"], body["code"]) == (status, status, code), body
    return True


# The providers: configuration, documented payloads, and how each signs its calls ------------


class Resend:
    name = "resend"
    url = "/webhooks/anymail/resend/tracking/"
    message_id = "4ef9a417-02e9-4d39-ad75-9611e0fcc33c"
    # What the provider says about each bounce, kept as the reason.
    words = {"hard_bounce": "hard bounce message", "soft_bounce": "inbox was full"}

    def configure(self, settings):
        settings.ANYMAIL = {"RESEND_SIGNING_SECRET": RESEND_SECRET}

    def event(self, kind: str, message_id: str) -> dict:
        data = {
            "created_at": iso(datetime.now(UTC)),
            "email_id": message_id,
            "from": "sv_sdk <no-reply@example.org>",
            "to": [TO],
            "subject": "Welcome aboard",
        }
        bounce = {
            "hard_bounce": {
                "message": "The recipient's email provider sent a hard bounce message, and"
                " there's nothing more to do.",
                "subType": "General",
                "type": "Permanent",
            },
            "soft_bounce": {
                "message": "The recipient's email provider sent a bounce message because the"
                " recipient's inbox was full.",
                "subType": "MailboxFull",
                "type": "Transient",
            },
        }
        if kind in bounce:
            data["bounce"] = bounce[kind]
        if kind == "clicked":
            data["click"] = {
                "ipAddress": "198.51.100.7",
                "link": "https://example.org/welcome",
                "timestamp": iso(datetime.now(UTC)),
                "userAgent": "Mozilla/5.0",
            }
        kinds = {
            "delivered": "email.delivered",
            "hard_bounce": "email.bounced",
            "soft_bounce": "email.bounced",
            "complaint": "email.complained",
            "opened": "email.opened",
            "clicked": "email.clicked",
        }
        return {"type": kinds[kind], "created_at": iso(datetime.now(UTC)), "data": data}

    def post(self, client, event, *, event_id: str, forged: bool = False):
        body = json.dumps(event)
        now = datetime.now(UTC)
        signature = Webhook(OTHER_SECRET if forged else RESEND_SECRET).sign(event_id, now, body)
        return client.post(
            self.url,
            body,
            content_type="application/json",
            HTTP_SVIX_ID=event_id,
            HTTP_SVIX_TIMESTAMP=str(int(now.timestamp())),
            HTTP_SVIX_SIGNATURE=signature,
        )


class Postmark:
    name = "postmark"
    url = POSTMARK_URL
    message_id = "b7bc2f4a-e38e-4336-af7d-e6c392c2f817"
    words = {"hard_bounce": "550 5.1.1", "soft_bounce": "452 4.2.2"}

    def configure(self, settings):
        settings.ANYMAIL = {"WEBHOOK_SECRET": POSTMARK_AUTH}

    def event(self, kind: str, message_id: str) -> dict:
        now = iso(datetime.now(UTC))
        common = {
            "MessageID": message_id,
            "ServerID": 23,
            "MessageStream": "outbound",
            "Tag": "",
            "Metadata": {},
        }
        bounce = {
            "RecordType": "Bounce",
            "ID": uuid.uuid4().int % 10**15,
            "Email": TO,
            "From": "no-reply@example.org",
            "BouncedAt": now,
            "DumpAvailable": True,
            "CanActivate": True,
            "Subject": "Welcome aboard",
            "Content": "",
        }
        return (
            common
            | {
                "delivered": {
                    "RecordType": "Delivery",
                    "Recipient": TO,
                    "DeliveredAt": now,
                    "Details": "smtp;250 2.0.0 OK",
                },
                "hard_bounce": bounce
                | {
                    "Type": "HardBounce",
                    "TypeCode": 1,
                    "Name": "Hard bounce",
                    "Description": "The server was unable to deliver your message (ex: unknown"
                    " user, mailbox not found).",
                    "Details": "smtp;550 5.1.1 The email account that you tried to reach does"
                    " not exist.",
                    "Inactive": True,
                },
                "soft_bounce": bounce
                | {
                    "Type": "SoftBounce",
                    "TypeCode": 4096,
                    "Name": "Soft bounce",
                    "Description": "The server could not temporarily deliver your message (ex:"
                    " Message is delayed due to network troubles).",
                    "Details": "smtp;452 4.2.2 The email account that you tried to reach is over"
                    " quota.",
                    "Inactive": False,
                },
                "complaint": bounce
                | {
                    "RecordType": "SpamComplaint",
                    "Type": "SpamComplaint",
                    "TypeCode": 512,
                    "Name": "Spam complaint",
                    "Description": "The subscriber explicitly marked this message as spam.",
                    "Details": "Test spam complaint details",
                    "Inactive": True,
                },
                "opened": {
                    "RecordType": "Open",
                    "FirstOpen": True,
                    "Recipient": TO,
                    "ReceivedAt": now,
                    "Platform": "WebMail",
                    "ReadSeconds": 5,
                    "UserAgent": "Mozilla/5.0",
                },
                "clicked": {
                    "RecordType": "Click",
                    "ClickLocation": "HTML",
                    "Recipient": TO,
                    "ReceivedAt": now,
                    "OriginalLink": "https://example.org/welcome",
                    "Platform": "Desktop",
                    "UserAgent": "Mozilla/5.0",
                },
            }[kind]
        )

    def post(self, client, event, *, event_id: str, forged: bool = False):
        # Postmark's events carry their own ids (bounces) or none; event_id is not sent.
        return postmark_post(client, event, auth="hook:guessed" if forged else POSTMARK_AUTH)


class Mailgun:
    name = "mailgun"
    url = "/webhooks/anymail/mailgun/tracking/"
    message_id = "<20261129044200.1.5C0FFEE@mg.example.com>"
    words = {"hard_bounce": "550 5.1.1", "soft_bounce": "452 4.2.2"}

    def configure(self, settings):
        settings.ANYMAIL = {"MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_KEY}

    def event(self, kind: str, message_id: str) -> dict:
        data = {
            "id": uuid.uuid4().hex[:22],
            "timestamp": datetime.now(UTC).timestamp(),
            "log-level": "info",
            "recipient": TO,
            "recipient-domain": "example.com",
            "message": {
                "headers": {
                    "to": TO,
                    "message-id": message_id.strip("<>"),
                    "from": "no-reply@example.org",
                    "subject": "Welcome aboard",
                },
                "size": 3012,
            },
            "user-variables": {},
            "tags": [],
        }
        failed = {"event": "failed", "log-level": "error", "reason": "generic"}
        by_kind = {
            "delivered": {
                "event": "delivered",
                "delivery-status": {"code": 250, "message": "OK", "description": ""},
            },
            "hard_bounce": failed
            | {
                "severity": "permanent",
                "reason": "bounce",
                "delivery-status": {
                    "attempt-no": 1,
                    "code": 550,
                    "message": "5.1.1 The email account that you tried to reach does not exist.",
                    "description": "smtp; 550 5.1.1 user unknown",
                },
            },
            "soft_bounce": failed
            | {
                "log-level": "warn",
                "severity": "temporary",
                "delivery-status": {
                    "attempt-no": 1,
                    "code": 452,
                    "message": "4.2.2 The email account that you tried to reach is over quota.",
                    "description": "smtp; 452 4.2.2 mailbox full",
                    "retry-seconds": 600,
                },
            },
            "complaint": {"event": "complained", "log-level": "warn"},
            "opened": {"event": "opened", "client-info": {"user-agent": "Mozilla/5.0"}},
            "clicked": {
                "event": "clicked",
                "url": "https://example.org/welcome",
                "client-info": {"user-agent": "Mozilla/5.0"},
            },
        }
        return {"event-data": data | by_kind[kind]}

    def post(self, client, event, *, event_id: str, forged: bool = False):
        timestamp = str(int(datetime.now(UTC).timestamp()))
        key = b"a guessed key" if forged else MAILGUN_KEY.encode()
        signature = hmac.new(key, f"{timestamp}{event_id}".encode(), hashlib.sha256).hexdigest()
        body = {"signature": {"timestamp": timestamp, "token": event_id, "signature": signature}}
        return client.post(self.url, json.dumps(body | event), content_type="application/json")


def _certificate(key) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


SNS_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
TOPIC = "arn:aws:sns:eu-west-1:123456789012:ses-events"
_SNS_SIGNED = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}


class Ses:
    name = "amazon_ses"
    url = "/webhooks/anymail/amazon_ses/tracking/"
    message_id = "0102018b2f3e4d5a-6b7c8d9e-0000-0000-0000-000000000000"
    words = {"hard_bounce": "550 5.1.1", "soft_bounce": "452 4.2.2"}
    host = ""  # the stand-in serving the signing certificate (see the sns_host fixture)

    def configure(self, settings):
        settings.ANYMAIL = {"WEBHOOK_SECRET": SES_AUTH}
        # Tests only: the stand-in plays AWS's SNS host.
        settings.SV_SNS_URL_PATTERN = "^" + re.escape(self.host) + "/"

    def event(self, kind: str, message_id: str) -> dict:
        now = iso(datetime.now(UTC))
        mail = {
            "timestamp": now,
            "source": "no-reply@example.org",
            "sourceArn": "arn:aws:ses:eu-west-1:123456789012:identity/example.org",
            "sendingAccountId": "123456789012",
            "messageId": message_id,
            "destination": [TO],
            "headersTruncated": False,
            "headers": [
                {"name": "From", "value": "no-reply@example.org"},
                {"name": "To", "value": TO},
                {"name": "Subject", "value": "Welcome aboard"},
            ],
            "commonHeaders": {
                "from": ["no-reply@example.org"],
                "to": [TO],
                "messageId": message_id,
                "subject": "Welcome aboard",
            },
            "tags": {"ses:configuration-set": ["sv_sdk"]},
        }

        def bounce(kind, sub, status, code):
            return {
                "eventType": "Bounce",
                "bounce": {
                    "bounceType": kind,
                    "bounceSubType": sub,
                    "bouncedRecipients": [
                        {
                            "emailAddress": TO,
                            "action": "failed",
                            "status": status,
                            "diagnosticCode": f"smtp; {code} {status} {sub}",
                        }
                    ],
                    "timestamp": now,
                    "feedbackId": "0102018b-feedback",
                    "reportingMTA": "dsn; a48-30.smtp-out.amazonses.com",
                },
            }

        return {"mail": mail} | {
            "delivered": {
                "eventType": "Delivery",
                "delivery": {
                    "timestamp": now,
                    "processingTimeMillis": 546,
                    "recipients": [TO],
                    "smtpResponse": "250 2.6.0 Message received",
                    "reportingMTA": "a8-70.smtp-out.amazonses.com",
                },
            },
            "hard_bounce": bounce("Permanent", "General", "5.1.1", 550),
            "soft_bounce": bounce("Transient", "MailboxFull", "4.2.2", 452),
            "complaint": {
                "eventType": "Complaint",
                "complaint": {
                    "complainedRecipients": [{"emailAddress": TO}],
                    "timestamp": now,
                    "feedbackId": "0102018b-complaint",
                    "userAgent": "ExampleCorp Feedback Loop (V0.01)",
                    "complaintFeedbackType": "abuse",
                    "arrivalDate": now,
                },
            },
            "opened": {
                "eventType": "Open",
                "open": {"ipAddress": "198.51.100.7", "timestamp": now, "userAgent": "Mozilla/5.0"},
            },
            "clicked": {
                "eventType": "Click",
                "click": {
                    "ipAddress": "198.51.100.7",
                    "link": "https://example.org/welcome",
                    "linkTags": {},
                    "timestamp": now,
                    "userAgent": "Mozilla/5.0",
                },
            },
        }[kind]

    def sns(self, fields: dict, *, key=SNS_KEY, version: str = "2") -> dict:
        message = {
            "Timestamp": datetime.now(UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "TopicArn": TOPIC,
            "SignatureVersion": version,
            "SigningCertURL": f"{self.host}/SimpleNotificationService-0001.pem",
            **fields,
        }
        signed = "".join(
            f"{name}\n{message[name]}\n" for name in _SNS_SIGNED[message["Type"]] if name in message
        )
        algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()  # noqa: S303
        signature = key.sign(signed.encode(), padding.PKCS1v15(), algorithm)
        return message | {"Signature": base64.b64encode(signature).decode()}

    def post_sns(self, client, message: dict, *, auth: str | None = SES_AUTH):
        headers = {
            "HTTP_X_AMZ_SNS_MESSAGE_TYPE": message.get("Type", ""),
            "HTTP_X_AMZ_SNS_MESSAGE_ID": message.get("MessageId", ""),
            "HTTP_X_AMZ_SNS_TOPIC_ARN": TOPIC,
        }
        if auth:
            headers["HTTP_AUTHORIZATION"] = basic(auth)
        return client.post(
            self.url, json.dumps(message), content_type="text/plain; charset=UTF-8", **headers
        )

    def post(self, client, event, *, event_id: str, forged: bool = False, version: str = "2"):
        message = self.sns(
            {"Type": "Notification", "MessageId": event_id, "Message": json.dumps(event)},
            key=OTHER_KEY if forged else SNS_KEY,
            version=version,
        )
        return self.post_sns(client, message)


PROVIDERS = [Resend(), Postmark(), Mailgun(), Ses()]


@pytest.fixture(scope="module")
def sns_host():
    pem = _certificate(SNS_KEY)
    with StandIn(default=Answer(200, pem, headers={"Content-Type": "text/plain"})) as host:
        yield host


@pytest.fixture(params=PROVIDERS, ids=lambda p: p.name)
def provider(request, settings, sns_host):
    Ses.host = sns_host.url
    request.param.configure(settings)
    settings.SV_EMAIL_WEBHOOK_PROVIDERS = [request.param.name]
    return request.param


def event_id() -> str:
    return uuid.uuid4().hex


# Every provider ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "status", "event_type", "suppressed"),
    [
        ("delivered", "delivered", "delivered", None),
        ("hard_bounce", "bounced", "bounced", "hard_bounce"),
        ("soft_bounce", "soft_bounced", "soft_bounced", None),
        ("complaint", "complained", "complained", "complaint"),
        ("opened", "sent", "opened", None),
        ("clicked", "sent", "clicked", None),
    ],
)
def test_each_documented_event_moves_the_send_and_suppresses_only_as_it_should(
    client, provider, kind, status, event_type, suppressed
):
    send = sent_send(provider=provider.name, message_id=provider.message_id)

    response = provider.post(client, provider.event(kind, provider.message_id), event_id=event_id())

    assert response.status_code == 200, response.content
    send.refresh_from_db()
    assert send.status == status
    webhook = EmailWebhook.objects.get(send=send)
    assert (webhook.provider, webhook.event_type) == (provider.name, event_type)
    assert webhook.payload  # the provider's raw event, kept
    if kind in provider.words:
        assert provider.words[kind] in webhook.reason
        assert provider.words[kind] in send.last_error
    for field, when in (
        ("delivered_at", "delivered"),
        ("opened_at", "opened"),
        ("clicked_at", "clicked"),
    ):
        assert (getattr(send, field) is not None) == (kind == when), field
    suppression = services.suppression_active(to_email=TO.upper())
    assert (suppression.reason if suppression else None) == suppressed
    later = services.email_queue(
        to_email=TO, category="marketing", template_key="welcome", context={"user_name": "R"}
    )
    assert later.status == ("suppressed" if suppressed else "queued")


def test_a_call_with_a_bad_signature_is_a_problem_and_stores_nothing(client, provider):
    send = sent_send(provider=provider.name, message_id=provider.message_id)

    response = provider.post(
        client, provider.event("hard_bounce", provider.message_id), event_id=event_id(), forged=True
    )

    assert is_problem(response, 400, "webhook_unverified")
    assert not EmailWebhook.objects.exists()
    assert not EmailSuppression.objects.exists()
    send.refresh_from_db()
    assert send.status == "sent"


def test_a_replayed_event_is_acknowledged_and_changes_nothing(client, provider):
    send = sent_send(provider=provider.name, message_id=provider.message_id)
    event, same_id = provider.event("soft_bounce", provider.message_id), event_id()
    assert provider.post(client, event, event_id=same_id).status_code == 200
    send.refresh_from_db()
    before = (send.status, send.updated_at, send.last_error)

    replay = provider.post(client, event, event_id=same_id)

    assert replay.status_code == 200  # acknowledged, so the provider stops retrying
    assert EmailWebhook.objects.count() == 1
    send.refresh_from_db()
    assert (send.status, send.updated_at, send.last_error) == before
    assert AuditLog.objects.filter(event_type="email.soft_bounced").count() == 1


def test_the_status_never_moves_back_whatever_order_the_events_come_in(client, provider):
    send = sent_send(provider=provider.name, message_id=provider.message_id)

    for kind in ("complaint", "hard_bounce", "delivered", "soft_bounce", "opened"):
        event = provider.event(kind, provider.message_id)
        assert provider.post(client, event, event_id=event_id()).status_code == 200

    send.refresh_from_db()
    assert send.status == "complained"
    assert send.delivered_at is not None and send.opened_at is not None
    assert EmailWebhook.objects.filter(send=send).count() == 5


def test_an_event_for_an_unknown_message_is_a_problem_and_stores_nothing(client, provider):
    send = sent_send(provider=provider.name, message_id=provider.message_id)

    response = provider.post(
        client, provider.event("complaint", "<not-ours@elsewhere>"), event_id=event_id()
    )

    assert is_problem(response, 400, "unknown_message")
    assert not EmailWebhook.objects.exists()
    assert services.suppression_active(to_email=TO) is None
    send.refresh_from_db()
    assert send.status == "sent"


def test_a_signed_body_that_is_no_event_is_a_problem_not_a_server_error(client, provider):
    response = provider.post(client, {}, event_id=event_id())

    assert response.status_code == 400
    assert response.json()["code"] in {"webhook_malformed", "unknown_message"}
    assert not EmailWebhook.objects.exists()


@pytest.mark.parametrize(
    "body", [b"", b"{}", b"[]", b"not json", b"\xff\xfe", b'{"signature": 1, "type": []}']
)
def test_an_unsigned_or_garbled_call_is_a_400_problem(client, provider, body):
    response = client.post(provider.url, body, content_type="application/json")

    # Amazon SNS first calls without credentials and expects a 401 challenge.
    if provider.name == "amazon_ses":
        assert is_problem(response, 401, "not_authenticated")
        assert response["WWW-Authenticate"].startswith("Basic")
    else:
        assert response.status_code == 400, response.content
        assert response["Content-Type"] == "application/problem+json"
    assert not EmailWebhook.objects.exists()


def test_a_provider_that_is_not_configured_answers_404_problem(client, settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": POSTMARK_AUTH}
    settings.SV_EMAIL_WEBHOOK_PROVIDERS = ["postmark"]

    for path in ("mailgun/tracking/", "sendgrid/tracking/", "nobody/tracking/", "x/inbound/"):
        response = client.post(f"/webhooks/anymail/{path}", "{}", content_type="application/json")
        assert is_problem(response, 404, "webhook_not_configured")


def test_without_any_webhook_secret_configured_events_are_refused(client, settings):
    settings.ANYMAIL = {}
    settings.SV_EMAIL_WEBHOOK_PROVIDERS = ["postmark"]
    send = sent_send(provider="postmark", message_id="pm-4")
    event = {"RecordType": "Delivery", "MessageID": "pm-4", "Recipient": TO}

    response = client.post(POSTMARK_URL, json.dumps(event), content_type="application/json")

    assert is_problem(response, 400, "webhook_unverified")
    assert not EmailWebhook.objects.exists()
    send.refresh_from_db()
    assert send.status == "sent"


def test_a_webhook_url_takes_only_post(client, settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": POSTMARK_AUTH}
    settings.SV_EMAIL_WEBHOOK_PROVIDERS = ["postmark"]

    response = client.get(POSTMARK_URL)

    assert is_problem(response, 405, "method_not_allowed")
    assert response["Allow"] == "POST, HEAD"


# Ordering and matching ----------------------------------------------------------------------


@pytest.fixture
def postmark(settings):
    Postmark().configure(settings)
    settings.SV_EMAIL_WEBHOOK_PROVIDERS = ["postmark"]
    return Postmark()


def test_a_late_delivery_event_does_not_move_a_complaint_back(client, postmark):
    send = sent_send(provider="postmark", message_id="pm-3")

    assert postmark_post(client, postmark.event("complaint", "pm-3")).status_code == 200
    assert postmark_post(client, postmark.event("delivered", "pm-3")).status_code == 200

    send.refresh_from_db()
    assert send.status == EmailSend.Status.COMPLAINED
    assert send.delivered_at is not None  # the fact is kept, the status is not undone
    assert AuditLog.objects.filter(event_type="email.complained", target_id=send.pk).exists()
    assert EmailWebhook.objects.filter(send=send).count() == 2


def test_a_delivery_after_a_soft_bounce_moves_the_send_on(client, postmark):
    send = sent_send(provider="postmark", message_id="pm-5")

    assert postmark_post(client, postmark.event("soft_bounce", "pm-5")).status_code == 200
    assert postmark_post(client, postmark.event("delivered", "pm-5")).status_code == 200

    send.refresh_from_db()
    assert send.status == EmailSend.Status.DELIVERED
    assert services.suppression_active(to_email=TO) is None


def test_an_event_that_arrives_before_the_message_id_is_stored_finds_its_send_by_metadata(
    client, postmark
):
    send = sent_send(provider="", message_id="")
    event = postmark.event("delivered", "pm-not-yet-stored") | {"Metadata": {"send_id": send.pk}}

    assert postmark_post(client, event).status_code == 200

    send.refresh_from_db()
    assert send.status == EmailSend.Status.DELIVERED


# Amazon SES through SNS ---------------------------------------------------------------------


@pytest.fixture
def ses(settings, sns_host):
    Ses.host = sns_host.url
    Ses().configure(settings)
    settings.SV_EMAIL_WEBHOOK_PROVIDERS = ["amazon_ses"]
    return Ses()


@pytest.mark.parametrize("version", ["1", "2"])
def test_sns_signatures_of_both_versions_are_verified(client, ses, version):
    send = sent_send(provider="amazon_ses", message_id=ses.message_id)

    response = ses.post(
        client, ses.event("delivered", ses.message_id), event_id=event_id(), version=version
    )

    assert response.status_code == 200, response.content
    send.refresh_from_db()
    assert send.status == "delivered"


def test_an_sns_message_whose_signed_text_was_changed_is_refused(client, ses):
    send = sent_send(provider="amazon_ses", message_id=ses.message_id)
    message = ses.sns(
        {
            "Type": "Notification",
            "MessageId": event_id(),
            "Message": json.dumps(ses.event("delivered", ses.message_id)),
        }
    )
    message["Message"] = json.dumps(ses.event("complaint", ses.message_id))

    assert is_problem(ses.post_sns(client, message), 400, "webhook_unverified")
    send.refresh_from_db()
    assert send.status == "sent"


def test_a_signing_certificate_off_the_aws_domain_is_never_fetched(client, ses, settings, sns_host):
    from sv_sdk.settings import base

    settings.SV_SNS_URL_PATTERN = base.SV_SNS_URL_PATTERN  # production's rule
    sent_send(provider="amazon_ses", message_id=ses.message_id)
    fetched = len(sns_host.requests)

    response = ses.post(client, ses.event("complaint", ses.message_id), event_id=event_id())

    assert is_problem(response, 400, "webhook_unverified")
    assert len(sns_host.requests) == fetched
    assert not EmailSuppression.objects.exists()


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://sns.us-east-1.amazonaws.com/SimpleNotificationService-1.pem", True),
        ("https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-1.pem", True),
        ("http://sns.us-east-1.amazonaws.com/SimpleNotificationService-1.pem", False),
        ("https://sns.us-east-1.amazonaws.com.evil.example/x.pem", False),
        ("https://evil.example/sns.us-east-1.amazonaws.com/x.pem", False),
        ("https://s3.amazonaws.com/x.pem", False),
        ("https://sns.us-east-1.amazonaws.com@evil.example/x.pem", False),
    ],
)
def test_the_production_rule_accepts_only_aws_sns_hosts(url, allowed):
    from sv_sdk.settings import base

    assert (re.match(base.SV_SNS_URL_PATTERN, url) is not None) == allowed


def confirmation(ses, subscribe_url: str) -> dict:
    return ses.sns(
        {
            "Type": "SubscriptionConfirmation",
            "MessageId": event_id(),
            "Token": "2336412f37fb687f5d51e6e2425c464de12884a1",
            "Message": f"You have chosen to subscribe to the topic {TOPIC}.",
            "SubscribeURL": subscribe_url,
        }
    )


def test_an_sns_subscription_is_confirmed_by_fetching_its_aws_url(client, ses, sns_host):
    url = f"{sns_host.url}/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=2336412f"

    response = ses.post_sns(client, confirmation(ses, url))

    assert response.status_code == 200, response.content
    assert any(r.path.startswith("/?Action=ConfirmSubscription") for r in sns_host.requests)
    assert not EmailWebhook.objects.exists()


def test_an_sns_subscription_url_off_the_aws_domain_is_refused_unfetched(client, ses):
    with StandIn() as elsewhere:
        response = ses.post_sns(client, confirmation(ses, f"{elsewhere.url}/confirm"))

        assert is_problem(response, 400, "webhook_malformed")
        assert elsewhere.requests == []


def test_an_sns_confirmation_url_that_hangs_gives_up_after_the_timeout(client, ses, settings):
    settings.SV_SNS_FETCH_TIMEOUT = 0.3
    with StandIn(default=Answer(200, "<ok/>", delay=2)) as slow:
        # Both hosts play AWS here.
        settings.SV_SNS_URL_PATTERN = f"^({re.escape(ses.host)}|{re.escape(slow.url)})/"
        started = datetime.now(UTC)

        response = ses.post_sns(client, confirmation(ses, f"{slow.url}/?Action=Confirm"))

        assert is_problem(response, 502, "sns_confirmation_failed")
        assert (datetime.now(UTC) - started).total_seconds() < 1.5
