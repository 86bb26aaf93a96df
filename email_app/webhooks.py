"""The receiver of django-anymail's `tracking` signal: verified ESP events into the outbox."""

import hashlib
import json

from anymail.exceptions import AnymailWebhookValidationFailure
from anymail.signals import AnymailTrackingEvent, tracking
from anymail.urls import urlpatterns as anymail_urlpatterns
from django.conf import settings
from django.dispatch import receiver
from django.http import Http404
from django.views.decorators.csrf import csrf_exempt

from sv_sdk import metrics

from .services import email_webhook_record

# The ANYMAIL setting that makes anymail check each ESP's signature, where it has one.
_SIGNING_SETTINGS = {
    "resend": "RESEND_SIGNING_SECRET",
    "mailgun": "MAILGUN_WEBHOOK_SIGNING_KEY",
}


def provider_key(esp_name: str) -> str:
    return esp_name.lower().replace(" ", "_")


def _is_verified(provider: str) -> bool:
    # Anymail accepts any request when no secret is configured (with a warning);
    # an unverifiable event could suppress anyone's mail, so it is refused.
    anymail = getattr(settings, "ANYMAIL", {})
    return bool(anymail.get("WEBHOOK_SECRET") or anymail.get(_SIGNING_SETTINGS.get(provider, "")))


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


@receiver(tracking, dispatch_uid="email_app.anymail_tracking")
def anymail_tracking_received(sender, event: AnymailTrackingEvent, esp_name: str, **kwargs):
    provider = provider_key(esp_name)
    if not _is_verified(provider):
        # A SuspiciousOperation: Django answers 400 and nothing is stored.
        metrics.WEBHOOK_EVENTS.labels(provider=provider, result="rejected").inc()
        raise AnymailWebhookValidationFailure(
            f"{esp_name} webhook refused: set SV_EMAIL_WEBHOOK_SECRET or"
            " SV_EMAIL_WEBHOOK_SIGNING_KEY"
        )
    metadata = event.metadata if isinstance(event.metadata, dict) else {}
    email_webhook_record(
        provider=provider,
        event_id=_event_id(provider, event),
        event_type=str(event.event_type)[:50],
        payload=_payload(event),
        message_id=str(event.message_id) if event.message_id else None,
        send_id=str(metadata["send_id"]) if metadata.get("send_id") else None,
        occurred_at=event.timestamp,
        description=str(event.description or event.mta_response or event.reject_reason or ""),
    )


# anymail's tracking view of every ESP it knows, by the ESP's name in the path.
_TRACKING_VIEWS = {
    str(pattern.pattern).removesuffix("/tracking/"): pattern.callback
    for pattern in anymail_urlpatterns
    if str(pattern.pattern).endswith("/tracking/")
}


@csrf_exempt  # the ESP signs its calls; anymail's views are exempt the same way
def tracking_webhook(request, esp: str):
    """anymail's tracking webhook of the configured ESP (SV_EMAIL_PROVIDER); 404 for any other.

    anymail mounts a view for every ESP it supports, and an unconfigured one may
    fail on its missing settings (a 500); only the ESP that delivers our mail
    has events worth receiving.
    """
    view = _TRACKING_VIEWS.get(esp)
    if view is None or esp != settings.SV_EMAIL_PROVIDER:
        raise Http404("No webhook for this email provider.")
    return view(request)
