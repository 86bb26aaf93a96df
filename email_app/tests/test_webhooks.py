"""Provider webhooks via anymail: signed events update sends; forged, replayed, late ones do not."""

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from anymail.exceptions import AnymailInsecureWebhookWarning
from svix.webhooks import Webhook

from audit_app.models import AuditLog
from email_app.models import EmailSend, EmailWebhook
from email_app.tests.factories import EmailSendFactory

pytestmark = pytest.mark.django_db

RESEND_SECRET = "whsec_" + base64.b64encode(b"resend test signing secret 0001").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"somebody else's secret key 0002").decode()
POSTMARK_AUTH = "hook:correct-horse"
RESEND_URL = "/webhooks/anymail/resend/tracking/"
POSTMARK_URL = "/webhooks/anymail/postmark/tracking/"


def sent_send(*, provider: str, message_id: str, to: str = "reader@example.com") -> EmailSend:
    send = EmailSendFactory(to_email=to)
    EmailSend.objects.filter(pk=send.pk).update(
        status=EmailSend.Status.SENT, provider=provider, provider_message_id=message_id
    )
    send.refresh_from_db()
    return send


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def resend_post(client, event: dict, *, svix_id: str, secret: str = RESEND_SECRET):
    body = json.dumps(event)
    now = datetime.now(UTC)
    signature = Webhook(secret).sign(svix_id, now, body)
    return client.post(
        RESEND_URL,
        body,
        content_type="application/json",
        HTTP_SVIX_ID=svix_id,
        HTTP_SVIX_TIMESTAMP=str(int(now.timestamp())),
        HTTP_SVIX_SIGNATURE=signature,
    )


def resend_event(kind: str, message_id: str, **data) -> dict:
    return {
        "type": f"email.{kind}",
        "created_at": iso(datetime.now(UTC)),
        "data": {"email_id": message_id, "to": ["reader@example.com"], **data},
    }


def postmark_post(client, event: dict, *, auth: str = POSTMARK_AUTH):
    token = base64.b64encode(auth.encode()).decode()
    return client.post(
        POSTMARK_URL,
        json.dumps(event),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Basic {token}",
    )


@pytest.fixture
def resend(settings):
    settings.SV_EMAIL_PROVIDER = "resend"
    settings.ANYMAIL = {"RESEND_SIGNING_SECRET": RESEND_SECRET}


@pytest.fixture
def postmark(settings):
    settings.SV_EMAIL_PROVIDER = "postmark"
    settings.ANYMAIL = {"WEBHOOK_SECRET": POSTMARK_AUTH}


def test_a_signed_resend_delivery_event_marks_the_send_delivered(client, resend):
    send = sent_send(provider="resend", message_id="re-1")

    response = resend_post(client, resend_event("delivered", "re-1"), svix_id="msg_a1")

    assert response.status_code == 200
    send.refresh_from_db()
    assert send.status == EmailSend.Status.DELIVERED
    assert send.delivered_at is not None
    webhook = EmailWebhook.objects.get()
    assert (webhook.provider, webhook.event_id, webhook.event_type, webhook.send_id) == (
        "resend",
        "msg_a1",
        "delivered",
        send.pk,
    )
    assert webhook.payload["data"]["email_id"] == "re-1"


def test_a_resend_event_with_a_bad_signature_is_rejected_and_stores_nothing(client, resend):
    send = sent_send(provider="resend", message_id="re-2")

    response = resend_post(
        client, resend_event("bounced", "re-2"), svix_id="msg_b1", secret=OTHER_SECRET
    )

    assert response.status_code == 400
    assert not EmailWebhook.objects.exists()
    send.refresh_from_db()
    assert send.status == EmailSend.Status.SENT


def test_a_replayed_resend_event_changes_nothing(client, resend):
    send = sent_send(provider="resend", message_id="re-3")
    event = resend_event("opened", "re-3")
    assert resend_post(client, event, svix_id="msg_c1").status_code == 200
    send.refresh_from_db()
    first_open, updated = send.opened_at, send.updated_at

    replay = resend_post(client, {**event, "created_at": iso(datetime.now(UTC))}, svix_id="msg_c1")

    assert replay.status_code == 200  # acknowledged, so the provider stops retrying
    assert EmailWebhook.objects.count() == 1
    send.refresh_from_db()
    assert (send.opened_at, send.updated_at) == (first_open, updated)


def test_a_postmark_hard_bounce_marks_the_send_bounced_and_suppresses_the_address(client, postmark):
    send = sent_send(provider="postmark", message_id="pm-1", to="Gone@Example.com")
    bounce = {
        "RecordType": "Bounce",
        "ID": 4323372036854775807,
        "Type": "HardBounce",
        "MessageID": "pm-1",
        "Email": "Gone@Example.com",
        "BouncedAt": iso(datetime.now(UTC)),
        "Description": "The server was unable to deliver your message",
    }

    assert postmark_post(client, bounce).status_code == 200

    send.refresh_from_db()
    assert send.status == EmailSend.Status.BOUNCED
    assert AuditLog.objects.filter(event_type="email.bounced", target_id=send.pk).count() == 1
    marketing = EmailSendFactory(to_email="gone@example.com", category="marketing")
    assert marketing.status == EmailSend.Status.SUPPRESSED
    account = EmailSendFactory(to_email="gone@example.com", category="account")
    assert account.status == EmailSend.Status.QUEUED


def test_a_postmark_event_with_the_wrong_password_is_rejected_and_stores_nothing(client, postmark):
    send = sent_send(provider="postmark", message_id="pm-2")
    event = {"RecordType": "Delivery", "MessageID": "pm-2", "Recipient": "reader@example.com"}

    assert postmark_post(client, event, auth="hook:guessed").status_code == 400
    assert EmailWebhook.objects.count() == 0
    send.refresh_from_db()
    assert send.status == EmailSend.Status.SENT


def test_a_late_delivery_event_does_not_move_a_complaint_back(client, postmark):
    send = sent_send(provider="postmark", message_id="pm-3")
    now = datetime.now(UTC)
    complaint = {
        "RecordType": "SpamComplaint",
        "ID": 42,
        "Type": "SpamComplaint",
        "MessageID": "pm-3",
        "Email": "reader@example.com",
        "BouncedAt": iso(now),
    }
    delivery = {
        "RecordType": "Delivery",
        "MessageID": "pm-3",
        "Recipient": "reader@example.com",
        "DeliveredAt": iso(now - timedelta(minutes=1)),
    }

    assert postmark_post(client, complaint).status_code == 200
    assert postmark_post(client, delivery).status_code == 200

    send.refresh_from_db()
    assert send.status == EmailSend.Status.COMPLAINED
    assert send.delivered_at is not None  # the fact is kept, the status is not undone
    assert AuditLog.objects.filter(event_type="email.complained", target_id=send.pk).exists()
    assert EmailWebhook.objects.filter(send=send).count() == 2


def test_an_event_that_arrives_before_the_message_id_is_stored_finds_its_send_by_metadata(
    client, postmark
):
    send = sent_send(provider="", message_id="")
    event = {
        "RecordType": "Delivery",
        "MessageID": "pm-not-yet-stored",
        "Recipient": "reader@example.com",
        "Metadata": {"send_id": send.pk},
    }

    assert postmark_post(client, event).status_code == 200

    send.refresh_from_db()
    assert send.status == EmailSend.Status.DELIVERED


def test_without_any_webhook_secret_configured_events_are_refused(client, settings):
    settings.SV_EMAIL_PROVIDER = "postmark"
    settings.ANYMAIL = {}
    send = sent_send(provider="postmark", message_id="pm-4")
    event = {"RecordType": "Delivery", "MessageID": "pm-4", "Recipient": "reader@example.com"}

    with pytest.warns(AnymailInsecureWebhookWarning):
        response = client.post(POSTMARK_URL, json.dumps(event), content_type="application/json")

    assert response.status_code == 400
    assert not EmailWebhook.objects.exists()
    send.refresh_from_db()
    assert send.status == EmailSend.Status.SENT
