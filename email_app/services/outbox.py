"""The outbox: queue a send (or keep it suppressed), resend one."""

import logging

from django.db import IntegrityError, transaction

from audit_app.models import AuditLog
from audit_app.services import audit_event, audit_write
from auth_app.models import User
from sv_sdk.db.batch import Batch
from sv_sdk.errors import ValidationFailed
from sv_sdk.jobs import defer_statement

from ..errors import ResendImpossible
from ..models import (
    ESSENTIAL_CATEGORIES,
    REDACTED,
    Category,
    EmailPreference,
    EmailSend,
    EmailTemplate,
)
from ..rendering import render
from .suppression import suppression_active
from .templates import template_get

logger = logging.getLogger(__name__)

Status = EmailSend.Status

# The delivery job (email_app.tasks), named rather than imported: the tasks call these services.
DELIVER_TASK = "email.deliver"


# Suppression -------------------------------------------------------------------------------


def suppression_reason(*, to_email: str, user_id: str | None, category: str) -> str:
    """Why non-essential mail must not go to this address now ("" if it may)."""
    if category in ESSENTIAL_CATEGORIES:
        return ""
    if (
        user_id
        and EmailPreference.objects.filter(
            user_id=user_id, category=category, subscribed=False
        ).exists()
    ):
        return f"unsubscribed from {category}"
    suppression = suppression_active(to_email=to_email)
    if suppression is not None:
        return f"address suppressed ({suppression.get_reason_display().lower()})"
    return ""


# The outbox --------------------------------------------------------------------------------


def email_queue(
    *,
    to_email: str,
    category: str,
    template_key: str,
    context: dict,
    user: User | None = None,
    locale: str | None = None,
    secret_keys: tuple[str, ...] = (),
    idempotency_key: str | None = None,
    actor: User | None = None,
) -> EmailSend:
    """Render a template into an outbox row and defer its delivery job, atomically.

    Values under `secret_keys` (links carrying tokens) are delivered but not
    kept: the stored context redacts them, and the bodies are redacted once sent.
    Rolling back the caller's transaction removes the row and the job alike. A
    repeated `idempotency_key` returns the first send and queues nothing.
    Non-essential mail to an unsubscribed, bounced or complaining address is
    recorded as `suppressed` and never delivered.
    """
    if category not in Category.values:
        raise ValidationFailed(errors={"category": [f"Unknown category {category!r}."]})
    if idempotency_key:
        existing = EmailSend.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing
    template = template_get(key=template_key, locale=locale)
    send = email_build(
        template=template,
        to_email=to_email,
        category=category,
        context=context,
        user=user,
        secret_keys=secret_keys,
        idempotency_key=idempotency_key,
    )
    return _send_create(send, actor=actor, metadata={"template": template.key})


def email_build(
    *,
    template: EmailTemplate,
    to_email: str,
    category: str,
    context: dict,
    user: User | None = None,
    secret_keys: tuple[str, ...] = (),
    idempotency_key: str | None = None,
) -> EmailSend:
    """An unsaved outbox row: the template rendered, the secrets left out of the stored context.

    Raises TemplateVariableMissing before anything is written.
    """
    subject, text_body, html_body = render(
        subject=template.subject,
        text_body=template.text_body,
        html_body=template.html_body,
        context=context,
    )
    if user is None and category not in ESSENTIAL_CATEGORIES:
        # Preferences and the unsubscribe link belong to a user: find the address's owner.
        user = User.objects.with_email(to_email).first()
    stored_context = {k: (REDACTED if k in secret_keys else v) for k, v in context.items()}
    return EmailSend(
        template=template,
        user=user,
        to_email=to_email,
        category=category,
        subject=subject,
        text_body=text_body,
        html_body=html_body,
        context={
            **stored_context,
            "_secrets": [context[k] for k in secret_keys if k in context],
        },
        idempotency_key=idempotency_key,
    )


def email_enqueue(batch: Batch, send: EmailSend, *, actor: User | None, metadata: dict) -> AuditLog:
    """Queue a new send's writes into `batch`; return its audit event, not yet written.

    The writes: the row (unless already saved) and, unless the address is
    suppressed for the category, the delivery job. A suppressed send is kept
    as `suppressed` and never delivered.
    """
    if send._state.adding:
        _status_set(send)
        batch.insert(send)
    if send.status == Status.QUEUED:
        batch.add(*defer_statement(DELIVER_TASK, send_id=send.pk))
    return audit_event(
        event_type="email.queued" if send.status == Status.QUEUED else "email.suppressed",
        actor_id=actor.pk if actor else None,
        user_id=send.user_id,
        target_type="email_send",
        target_id=send.pk,
        metadata={**metadata, "category": send.category, "status": send.status},
    )


def _status_set(send: EmailSend) -> None:
    send.last_error = suppression_reason(
        to_email=send.to_email, user_id=send.user_id, category=send.category
    )
    send.status = Status.SUPPRESSED if send.last_error else Status.QUEUED


def _send_create(send: EmailSend, *, actor: User | None, metadata: dict) -> EmailSend:
    # No outer savepoint when nested: apart from the idempotency race, handled by
    # its own savepoint below, only a database error can leave this block, and
    # that aborts the caller's transaction anyway; a savepoint costs two round trips.
    with transaction.atomic(savepoint=False):
        if send.idempotency_key:
            # Two racing calls with one key: the second waits for the first to
            # commit, fails on the unique index, and returns the first's send.
            _status_set(send)
            try:
                with transaction.atomic():
                    send.save(force_insert=True)
            except IntegrityError as exc:
                if "idempotency_key" not in str(exc):
                    raise
                return EmailSend.objects.get(idempotency_key=send.idempotency_key)
        batch = Batch()
        event = email_enqueue(batch, send, actor=actor, metadata=metadata)
        batch.run()  # the row and its job in one round trip
        audit_write(event)
    return send


def email_resend(*, send: EmailSend, actor: User | None = None) -> EmailSend:
    """Queue a new send with the same rendered content, to the same address."""
    if REDACTED in send.text_body or REDACTED in send.html_body:
        # A delivered token link is redacted: resending would carry a dead link.
        raise ResendImpossible()
    copy = EmailSend(
        template_id=send.template_id,
        user_id=send.user_id,
        to_email=send.to_email,
        category=send.category,
        subject=send.subject,
        text_body=send.text_body,
        html_body=send.html_body,
        context=send.context,
    )
    return _send_create(
        copy,
        actor=actor,
        metadata={"template": send.template.key if send.template_id else "", "resend_of": send.pk},
    )
