"""Provider events (webhooks): store each once and move its send's status forward."""

import logging
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit_app.services import audit_record
from sv_sdk import metrics

from ..errors import UnknownMessage
from ..models import (
    EmailSend,
    EmailSuppression,
    EmailWebhook,
)
from . import suppression

logger = logging.getLogger(__name__)

Status = EmailSend.Status


# Provider events ---------------------------------------------------------------------------

# Which provider events move a send's status, and how far along each status is.
# A status only ever moves to a higher rank, so late or replayed events never undo one.
_EVENT_STATUS = {
    "soft_bounced": Status.SOFT_BOUNCED,
    "delivered": Status.DELIVERED,
    "rejected": Status.FAILED,
    "failed": Status.FAILED,
    "bounced": Status.BOUNCED,
    "complained": Status.COMPLAINED,
}
_RANK = {
    Status.QUEUED: 0,
    Status.DEFERRED: 0,
    Status.SENDING: 1,
    Status.SENT: 2,
    Status.SOFT_BOUNCED: 3,
    Status.DELIVERED: 4,
    Status.FAILED: 4,
    Status.BOUNCED: 5,
    Status.COMPLAINED: 6,
}
_EVENT_AUDIT = {
    Status.SOFT_BOUNCED: "email.soft_bounced",
    Status.BOUNCED: "email.bounced",
    Status.COMPLAINED: "email.complained",
    Status.FAILED: "email.failed",
}
# The provider's words are kept on the send for these (shown with it).
_EVENT_ERROR = frozenset({Status.SOFT_BOUNCED, Status.BOUNCED, Status.FAILED})
# Events that suppress the address at once.
_EVENT_SUPPRESSION = {
    "bounced": EmailSuppression.Reason.HARD_BOUNCE,
    "complained": EmailSuppression.Reason.COMPLAINT,
}


def email_webhook_record(
    *,
    provider: str,
    event_id: str,
    event_type: str,
    payload: dict,
    message_id: str | None = None,
    send_id: str | None = None,
    occurred_at: datetime | None = None,
    reason: str = "",
) -> EmailWebhook | None:
    """Store a verified provider event and apply it to its send; None for a replay.

    `event_type` is anymail's, with bounces split into `bounced` (hard) and
    `soft_bounced`. Raises UnknownMessage, storing nothing, when no send matches.
    """
    with transaction.atomic():
        send = _send_for_event(message_id=message_id, send_id=send_id)
        if send is None:
            metrics.WEBHOOK_EVENTS.labels(provider=provider, result="unmatched").inc()
            raise UnknownMessage()
        webhook = EmailWebhook(
            provider=provider,
            event_id=event_id,
            event_type=event_type,
            reason=reason[:2000],
            payload=payload,
            send=send,
            received_at=suppression.now(),
            processed_at=timezone.now(),
        )
        try:
            with transaction.atomic():
                webhook.save(force_insert=True)
        except IntegrityError as exc:
            if "email_webhooks_provider_event_uniq" in str(exc):
                # A replay: the first delivery already did everything.
                metrics.WEBHOOK_EVENTS.labels(provider=provider, result="replay").inc()
                return None
            raise
        _apply_event(send, event_type, occurred_at or timezone.now(), provider, reason)
        _suppress_if_due(send, event_type, provider, reason)
        metrics.count_on_commit(metrics.WEBHOOK_EVENTS, provider=provider, result="applied")
    return webhook


def _send_for_event(*, message_id: str | None, send_id: str | None) -> EmailSend | None:
    sends = EmailSend.objects.select_for_update()
    send = sends.filter(provider_message_id=message_id).first() if message_id else None
    if send is None and send_id:
        send = sends.filter(pk=send_id).first()
    return send


def _apply_event(
    send: EmailSend, event_type: str, when: datetime, provider: str, reason: str
) -> None:
    changed = []
    for kind, field in (
        ("delivered", "delivered_at"),
        ("opened", "opened_at"),
        ("clicked", "clicked_at"),
    ):
        # The first occurrence counts; a repeat or a late copy leaves the time alone.
        if event_type == kind and getattr(send, field) is None:
            setattr(send, field, when)
            changed.append(field)
    target = _EVENT_STATUS.get(event_type)
    moved = target is not None and _RANK[target] > _RANK.get(send.status, len(_RANK))
    if moved:
        send.status = target
        changed.append("status")
        if target in _EVENT_ERROR:
            send.last_error = (reason or f"{provider} reported {event_type}")[:2000]
            changed.append("last_error")
    if changed:
        send.save(update_fields=[*changed, "updated_at"])
    if moved and target == Status.DELIVERED:  # the other statuses count by their audit event
        metrics.count_on_commit(metrics.EMAILS, status=target)
    if moved and target in _EVENT_AUDIT:
        audit_record(
            event_type=_EVENT_AUDIT[target],
            user_id=send.user_id,
            target_type="email_send",
            target_id=send.pk,
            metadata={"provider": provider, "category": send.category},
        )


def _suppress_if_due(send: EmailSend, event_type: str, provider: str, reason: str) -> None:
    if event_type in _EVENT_SUPPRESSION:
        suppression.email_suppress(
            send=send, reason=_EVENT_SUPPRESSION[event_type], provider=provider, detail=reason
        )
    elif (
        event_type == "soft_bounced"
        and suppression.soft_bounce_count(send=send) >= settings.SV_EMAIL_SOFT_BOUNCE_LIMIT
    ):
        suppression.email_suppress(
            send=send,
            reason=EmailSuppression.Reason.SOFT_BOUNCES,
            provider=provider,
            detail=reason,
        )
