"""Provider events (webhooks): store each once and move its send's status forward."""

import logging
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from audit_app.services import audit_record
from sv_sdk import metrics

from ..models import (
    EmailSend,
    EmailWebhook,
)

logger = logging.getLogger(__name__)

Status = EmailSend.Status


# Provider events ---------------------------------------------------------------------------

# Which provider events move a send's status, and how far along each status is.
# A status only ever moves to a higher rank, so late or replayed events never undo one.
_EVENT_STATUS = {
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
    Status.DELIVERED: 3,
    Status.FAILED: 3,
    Status.BOUNCED: 4,
    Status.COMPLAINED: 5,
}
_EVENT_AUDIT = {
    Status.BOUNCED: "email.bounced",
    Status.COMPLAINED: "email.complained",
    Status.FAILED: "email.failed",
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
    description: str = "",
) -> EmailWebhook | None:
    """Store a verified provider event and apply it to its send; None for a replay."""
    with transaction.atomic():
        send = _send_for_event(message_id=message_id, send_id=send_id)
        webhook = EmailWebhook(
            provider=provider,
            event_id=event_id,
            event_type=event_type,
            payload=payload,
            send=send,
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
        if send is not None:
            _apply_event(send, event_type, occurred_at or timezone.now(), provider, description)
        result = "applied" if send is not None else "unmatched"
        metrics.count_on_commit(metrics.WEBHOOK_EVENTS, provider=provider, result=result)
    return webhook


def _send_for_event(*, message_id: str | None, send_id: str | None) -> EmailSend | None:
    sends = EmailSend.objects.select_for_update()
    send = sends.filter(provider_message_id=message_id).first() if message_id else None
    if send is None and send_id:
        send = sends.filter(pk=send_id).first()
    return send


def _apply_event(
    send: EmailSend, event_type: str, when: datetime, provider: str, description: str
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
        if target == Status.FAILED:
            send.last_error = (description or f"{provider} reported {event_type}")[:2000]
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
