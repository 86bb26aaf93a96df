"""The outbox: queue a send (or keep it suppressed), resend one."""

import json
import logging
from typing import NamedTuple

from django.db import IntegrityError, transaction

from audit_app.models import AuditLog
from audit_app.services import audit_event, audit_write
from auth_app.models import User
from sv_sdk.db.batch import Batch
from sv_sdk.errors import ValidationFailed
from sv_sdk.jobs import defer_statement

from ..errors import ResendImpossible, TemplateReserved
from ..models import (
    ESSENTIAL_CATEGORIES,
    SECURITY_TEMPLATES,
    Category,
    EmailPreference,
    EmailSend,
    EmailTemplate,
)
from ..rendering import LINK_MARKER, REDACTED, link_marker, links_misplaced, render
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


class SecretLink(NamedTuple):
    """A link that carries a token: delivered, never stored in clear nor shown."""

    url: str
    token: str


def email_queue(
    *,
    to_email: str,
    category: str,
    template_key: str,
    context: dict,
    user: User | None = None,
    locale: str | None = None,
    secret_links: dict[str, SecretLink] | None = None,
    idempotency_key: str | None = None,
    actor: User | None = None,
) -> EmailSend:
    """Render a template into an outbox row and defer its delivery job, atomically.

    `secret_links` (template variable to link) are inserted after rendering, at
    delivery, and never stored in clear (see email_build). A security template
    (SECURITY_TEMPLATES) is queued by the account flows only, which pass no
    `actor`: asked by someone, it raises TemplateReserved. Rolling back the
    caller's transaction removes the row and the job alike. A repeated
    `idempotency_key` returns the first send and queues nothing. Non-essential
    mail to an unsubscribed, bounced or complaining address is recorded as
    `suppressed` and never delivered.
    """
    if actor is not None and template_key in SECURITY_TEMPLATES:
        raise TemplateReserved()
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
        secret_links=secret_links,
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
    secret_links: dict[str, SecretLink] | None = None,
    idempotency_key: str | None = None,
) -> EmailSend:
    """An unsaved outbox row: the template rendered with a marker for each secret link.

    The links themselves go, encrypted, into `links`, for delivery to put in
    place of the markers. A marker the template moved out of place (see
    rendering.links_misplaced; template_update refuses such templates) becomes
    [redacted] instead. Raises TemplateVariableMissing or TemplateTooLarge
    before anything is written.
    """
    links = secret_links or {}
    undeclared = set(links) - set(SECURITY_TEMPLATES.get(template.key, ()))
    if undeclared:
        raise ValueError(f"template {template.key!r} takes no secret link {sorted(undeclared)}")
    markers = {name: link_marker() for name in links}
    rendered = dict(
        zip(
            ("subject", "text_body", "html_body"),
            render(
                subject=template.subject,
                text_body=template.text_body,
                html_body=template.html_body,
                context={**context, **markers},
            ),
            strict=True,
        )
    )
    misplaced = links_misplaced(
        markers.values(),
        subject=rendered["subject"],
        text=rendered["text_body"],
        html=rendered["html_body"],
    )
    for part, part_markers in misplaced.items():
        logger.warning("template %s puts a secret link out of place in its %s", template, part)
        for marker in part_markers:
            rendered[part] = rendered[part].replace(marker, REDACTED)
    if user is None and category not in ESSENTIAL_CATEGORIES:
        # Preferences and the unsubscribe link belong to a user: find the address's owner.
        user = User.objects.with_email(to_email).first()
    send = EmailSend(
        template=template,
        user=user,
        to_email=to_email,
        category=category,
        context={**context, **dict.fromkeys(links, REDACTED)},
        links=json.dumps({markers[name]: list(link) for name, link in links.items()})
        if links
        else "",
        idempotency_key=idempotency_key,
    )
    # By value too: a caller that also put a token elsewhere in the context leaks nothing.
    for part, value in rendered.items():
        setattr(send, part, send.without_secrets(value))
    send.context = json.loads(send.without_secrets(json.dumps(send.context)))
    return send


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
    """Queue a new send with the same rendered content, to the same address.

    Not for security mail, nor for an email that carried a secret link: its
    token is not kept, and a second copy of a live one must not exist.
    """
    if actor is not None and send.template_id and send.template.key in SECURITY_TEMPLATES:
        raise TemplateReserved()
    if any(
        LINK_MARKER.search(body) or REDACTED in body for body in (send.text_body, send.html_body)
    ):
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
