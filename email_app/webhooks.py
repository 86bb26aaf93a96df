"""ESP webhooks: anymail's views, answering problems, and its tracking signal into the outbox.

Anymail checks each provider's basic auth or signature and normalises its events;
this module adds what it leaves out: Amazon SNS signature checks, a confirmation
URL fetched only from AWS, bounces split into hard and soft by the provider's own
fields, and RFC 9457 answers (never an HTML page or a 500) for bad calls.
"""

import base64
import hashlib
import json
import logging
import re
import urllib.error
import urllib.request
from functools import lru_cache

from anymail.exceptions import AnymailError, AnymailWebhookValidationFailure
from anymail.signals import AnymailTrackingEvent, EventType, tracking
from anymail.webhooks.amazon_ses import AmazonSESTrackingWebhookView
from anymail.webhooks.mailgun import MailgunTrackingWebhookView
from anymail.webhooks.postmark import PostmarkTrackingWebhookView
from anymail.webhooks.resend import ResendTrackingWebhookView
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, SuspiciousOperation
from django.db import transaction
from django.dispatch import receiver
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from sv_sdk import metrics
from sv_sdk.api.exceptions import PROBLEM_CONTENT_TYPE, problem_body
from sv_sdk.errors import ApplicationError

from .errors import (
    SnsConfirmationFailed,
    WebhookMalformed,
    WebhookMethodNotAllowed,
    WebhookNotAuthenticated,
    WebhookNotConfigured,
    WebhookRefused,
)
from .services import email_webhook_record

logger = logging.getLogger(__name__)


# Problems ----------------------------------------------------------------------------------


def _problem(exc: ApplicationError) -> JsonResponse:
    response = JsonResponse(
        problem_body(
            status_code=exc.status_code, code=exc.code, title=exc.title, detail=exc.detail
        ),
        status=exc.status_code,
        content_type=PROBLEM_CONTENT_TYPE,
    )
    for name, value in (getattr(exc, "headers", None) or {}).items():
        response[name] = value
    return response


# What a provider's parser raises on a body that is not its event (anymail reads the
# fields it expects without checking they are there).
_MALFORMED = (AnymailError, ImproperlyConfigured, KeyError, IndexError, TypeError, ValueError,
              AttributeError)  # fmt: skip


class _ProblemAnswers:
    """Anymail's webhook view, answering problems; every event of a call in one transaction."""

    def run_validators(self, request):
        try:
            super().run_validators(request)
        except SuspiciousOperation:
            raise
        except _MALFORMED as exc:
            raise WebhookMalformed() from exc

    def parse_events(self, request):
        try:
            return super().parse_events(request)
        except SuspiciousOperation:
            raise
        except _MALFORMED as exc:
            raise WebhookMalformed() from exc

    def post(self, request, *args, **kwargs):
        try:
            with transaction.atomic():
                response = super().post(request, *args, **kwargs)
        except ApplicationError as exc:
            return _problem(exc)
        except SuspiciousOperation as exc:
            # Anymail's message names what failed (basic auth, signature), not a secret.
            logger.info("%s webhook refused: %s", self.esp_name, exc)
            metrics.WEBHOOK_EVENTS.labels(
                provider=provider_key(self.esp_name), result="rejected"
            ).inc()
            return _problem(WebhookRefused())
        if response.status_code == 401:
            return _problem(WebhookNotAuthenticated())
        return response


class ResendWebhook(_ProblemAnswers, ResendTrackingWebhookView):
    pass


class PostmarkWebhook(_ProblemAnswers, PostmarkTrackingWebhookView):
    pass


class MailgunWebhook(_ProblemAnswers, MailgunTrackingWebhookView):
    pass


# Amazon SES through SNS --------------------------------------------------------------------

# The fields SNS signs, in order, per message type (AWS: "Verifying the signatures of
# Amazon SNS messages"); Subject is signed only when present.
_SNS_SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type",
    ),
    "UnsubscribeConfirmation": (
        "Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type",
    ),
}  # fmt: skip
_SNS_HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A checked AWS URL must not lead anywhere else.
    def redirect_request(self, *args, **kwargs):
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def _sns_url_allowed(url: str) -> bool:
    return isinstance(url, str) and re.match(settings.SV_SNS_URL_PATTERN, url) is not None


def _sns_fetch(url: str) -> bytes:
    # Only URLs matching SV_SNS_URL_PATTERN (AWS's SNS hosts) get here.
    with _opener.open(url, timeout=settings.SV_SNS_FETCH_TIMEOUT) as response:
        return response.read(64 * 1024)


@lru_cache(maxsize=32)
def _sns_certificate(url: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(_sns_fetch(url))


def sns_signature_verify(message: dict) -> None:
    """Raise AnymailWebhookValidationFailure unless Amazon SNS signed `message`."""
    fields = _SNS_SIGNED_FIELDS.get(message.get("Type"))
    algorithm = _SNS_HASHES.get(str(message.get("SignatureVersion")))
    cert_url = message.get("SigningCertURL") or message.get("SigningCertUrl")
    if fields is None or algorithm is None:
        raise AnymailWebhookValidationFailure("SNS message type or signature version unknown")
    if not _sns_url_allowed(cert_url) or not cert_url.endswith(".pem"):
        raise AnymailWebhookValidationFailure(f"SNS signing certificate URL refused: {cert_url}")
    signed = "".join(
        f"{name}\n{message[name]}\n" for name in fields if name != "Subject" or name in message
    )
    try:
        signature = base64.b64decode(message["Signature"], validate=True)
        certificate = _sns_certificate(cert_url)
        certificate.public_key().verify(signature, signed.encode(), padding.PKCS1v15(), algorithm())
    except (KeyError, TypeError, ValueError, InvalidSignature, urllib.error.URLError) as exc:
        raise AnymailWebhookValidationFailure(f"SNS signature not verified: {exc}") from exc


class AmazonSesWebhook(_ProblemAnswers, AmazonSESTrackingWebhookView):
    """SES events through SNS: basic auth (anymail), and the SNS signature on every message."""

    def validate_request(self, request):
        # Anymail's own checks (headers match the body) have run before this one.
        sns_signature_verify(self._parse_sns_message(request))

    def parse_events(self, request):
        events = super().parse_events(request)
        message = self._parse_sns_message(request)
        # A notification always carries an SES event for at least one recipient, except
        # the notice SES publishes once when the topic is set up.
        if (
            not events
            and message.get("Type") == "Notification"
            and message.get("Message")
            != "Successfully validated SNS topic for Amazon SES event publishing."
        ):
            raise WebhookMalformed()
        return events

    def auto_confirm_sns_subscription(self, sns_message):
        # Anymail confirms only with basic auth configured, through boto3; the
        # SubscribeURL SNS signed does the same without credentials.
        if not self.basic_auth:
            raise AnymailWebhookValidationFailure("SNS subscriptions need basic auth")
        url = sns_message.get("SubscribeURL")
        if not _sns_url_allowed(url):
            raise WebhookMalformed(f"SubscribeURL is not an Amazon SNS URL: {url}")
        try:
            _sns_fetch(url)
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            logger.warning("confirming the SNS subscription failed: %s", exc)
            raise SnsConfirmationFailed() from exc
        logger.info("confirmed the SNS subscription to %s", sns_message.get("TopicArn"))


# The views, and who is let in ---------------------------------------------------------------

_VIEWS = {
    "resend": ResendWebhook,
    "postmark": PostmarkWebhook,
    "mailgun": MailgunWebhook,
    "amazon_ses": AmazonSesWebhook,
}
# The ANYMAIL setting that makes anymail check each ESP's signature, where it has one.
_SIGNING_SETTINGS = {
    "resend": "RESEND_SIGNING_SECRET",
    "mailgun": "MAILGUN_WEBHOOK_SIGNING_KEY",
}


def _is_verified(provider: str) -> bool:
    # Anymail accepts any request when no secret is configured (with a warning);
    # an unverifiable event could suppress anyone's mail, so it is refused.
    anymail = getattr(settings, "ANYMAIL", {})
    return bool(anymail.get("WEBHOOK_SECRET") or anymail.get(_SIGNING_SETTINGS.get(provider, "")))


@csrf_exempt
def webhook_not_found(request, rest: str):
    return _problem(WebhookNotConfigured())


@csrf_exempt
def tracking_webhook(request, provider: str):
    """The tracking webhook of a configured ESP; a problem document for every refusal."""
    view_class = _VIEWS.get(provider)
    if view_class is None or provider not in settings.SV_EMAIL_WEBHOOK_PROVIDERS:
        return _problem(WebhookNotConfigured())
    if not _is_verified(provider):
        metrics.WEBHOOK_EVENTS.labels(provider=provider, result="rejected").inc()
        return _problem(
            WebhookRefused(
                "No webhook secret is configured: set SV_EMAIL_WEBHOOK_SECRET or"
                " SV_EMAIL_WEBHOOK_SIGNING_KEY."
            )
        )
    if request.method not in ("POST", "HEAD"):
        return _problem(WebhookMethodNotAllowed())
    return view_class.as_view()(request)


# Events into the outbox ---------------------------------------------------------------------

_HARD, _SOFT = "bounced", "soft_bounced"


def _resend_bounce(raw: dict) -> str | None:
    kind = ((raw.get("data") or {}).get("bounce") or {}).get("type")
    return {"Permanent": _HARD, "Transient": _SOFT, "Undetermined": _SOFT}.get(kind)


def _postmark_bounce(raw: dict) -> str | None:
    if raw.get("RecordType") != "Bounce":
        return None
    kind = raw.get("Type")
    if kind in ("HardBounce", "BadEmailAddress", "ManuallyDeactivated"):
        return _HARD
    if kind in ("SoftBounce", "Transient", "DnsError"):
        return _SOFT
    return None


def _mailgun_bounce(raw: dict) -> str | None:
    data = raw.get("event-data") or {}
    if data.get("event") != "failed":
        return None
    # "old": Mailgun gave up retrying temporary failures; the mailbox may recover.
    if data.get("severity") == "temporary" or data.get("reason") == "old":
        return _SOFT
    return _HARD


def _ses_bounce(raw: dict) -> str | None:
    bounce = raw.get("bounce")
    if not isinstance(bounce, dict):
        return None
    return _HARD if bounce.get("bounceType") == "Permanent" else _SOFT


_BOUNCE_CLASSES = {
    "resend": _resend_bounce,
    "postmark": _postmark_bounce,
    "mailgun": _mailgun_bounce,
    "amazon_ses": _ses_bounce,
}
_SMTP_TEMPORARY = re.compile(r"(^|\D)4\d\d(\D|$)|(^|\D)4\.\d{1,3}\.\d{1,3}")


def event_type_for(provider: str, event: AnymailTrackingEvent) -> str:
    """Anymail's event type, with a bounce classed hard (`bounced`) or `soft_bounced`.

    The provider's own field decides (Postmark's Type, SES's and Resend's bounce
    type, Mailgun's severity); else a 4xx SMTP reply is soft and the rest hard.
    """
    raw = event.esp_event if isinstance(event.esp_event, dict) else {}
    classify = _BOUNCE_CLASSES.get(provider)
    bounce = classify(raw) if classify else None
    if bounce:
        return bounce
    if event.event_type == EventType.BOUNCED:
        smtp = str(event.mta_response or "")
        return _SOFT if _SMTP_TEMPORARY.search(smtp) else _HARD
    return str(event.event_type)[:50]


def provider_key(esp_name: str) -> str:
    return esp_name.lower().replace(" ", "_")


def _event_id(provider: str, event: AnymailTrackingEvent) -> str:
    if event.event_id:
        return str(event.event_id)[:255]
    # Some events carry no id (Postmark deliveries): derive one from what
    # identifies the event, so a replay still maps to the same row.
    parts = [
        provider,
        event.event_type,
        event.message_id or "",
        event.timestamp.isoformat() if event.timestamp else "",
        event.recipient or "",
    ]
    return "derived:" + hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()


def _payload(event: AnymailTrackingEvent) -> dict:
    raw = event.esp_event
    try:
        payload = json.loads(json.dumps(raw, default=str))
    except (TypeError, ValueError):
        payload = {"repr": repr(raw)[:10000]}
    return payload if isinstance(payload, dict) else {"event": payload}


def _reason(event: AnymailTrackingEvent) -> str:
    # The provider's words: its description (bounce type) and the receiving server's reply.
    parts = [event.description, event.mta_response]
    return " | ".join(dict.fromkeys(str(p).strip() for p in parts if p and str(p).strip()))


@receiver(tracking, dispatch_uid="email_app.anymail_tracking")
def anymail_tracking_received(sender, event: AnymailTrackingEvent, esp_name: str, **kwargs):
    provider = provider_key(esp_name)
    metadata = event.metadata if isinstance(event.metadata, dict) else {}
    email_webhook_record(
        provider=provider,
        event_id=_event_id(provider, event),
        event_type=event_type_for(provider, event),
        payload=_payload(event),
        message_id=str(event.message_id) if event.message_id else None,
        send_id=str(metadata["send_id"]) if metadata.get("send_id") else None,
        occurred_at=event.timestamp,
        reason=_reason(event),
    )
