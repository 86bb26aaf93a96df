"""The outbox: queue an email inside the caller's transaction, deliver it from a worker."""

import logging

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.utils import timezone

from audit_app.services import audit_record
from auth_app.models import User

from .errors import TemplateNotFound
from .models import EmailSend, EmailTemplate
from .rendering import render

logger = logging.getLogger(__name__)

REDACTED = "[redacted]"


def template_get(*, key: str, locale: str | None = None) -> EmailTemplate:
    """The active template for key and locale, falling back to the default locale."""
    locales = [loc for loc in (locale, settings.SV_DEFAULT_LOCALE) if loc]
    templates = {
        t.locale: t
        for t in EmailTemplate.objects.filter(key=key, locale__in=locales, is_active=True)
    }
    for loc in locales:
        if loc in templates:
            return templates[loc]
    raise TemplateNotFound(f"no active email template {key!r}")


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
) -> EmailSend:
    """Render a template into an outbox row and defer its delivery job, atomically.

    Values under `secret_keys` (links carrying tokens) are delivered but not
    kept: the stored context redacts them, and the bodies are redacted once sent.
    Rolling back the caller's transaction removes the row and the job alike.
    """
    from .tasks import email_deliver

    if idempotency_key:
        existing = EmailSend.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing
    template = template_get(key=template_key, locale=locale)
    subject, text_body, html_body = render(
        subject=template.subject,
        text_body=template.text_body,
        html_body=template.html_body,
        context=context,
    )
    stored_context = {k: (REDACTED if k in secret_keys else v) for k, v in context.items()}
    with transaction.atomic():
        send = EmailSend.objects.create(
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
        email_deliver.defer(send_id=send.pk)
        audit_record(
            event_type="email.queued",
            user_id=user.pk if user else None,
            target_type="email_send",
            target_id=send.pk,
            metadata={"template": template.key, "category": category},
        )
    return send


def _redact(text: str, secrets_: list[str]) -> str:
    for secret in secrets_:
        text = text.replace(secret, REDACTED)
    return text


def email_deliver(*, send_id: str) -> EmailSend | None:
    """Claim a queued send, deliver it through Django's email backend, record the outcome."""
    with transaction.atomic():
        send = (
            EmailSend.objects.select_for_update(skip_locked=True)
            .filter(pk=send_id, status__in=[EmailSend.Status.QUEUED, EmailSend.Status.DEFERRED])
            .first()
        )
        if send is None:
            return None  # already delivered, or claimed by another worker
        send.status = EmailSend.Status.SENDING
        send.attempts += 1
        send.save(update_fields=["status", "attempts", "updated_at"])

    message = EmailMultiAlternatives(
        subject=send.subject,
        body=send.text_body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[send.to_email],
    )
    if send.html_body:
        message.attach_alternative(send.html_body, "text/html")
    try:
        message.send()
    except Exception as exc:
        _record_failure(send, exc)
        raise
    _record_success(send, message)
    return send


def _record_success(send: EmailSend, message: EmailMultiAlternatives) -> None:
    status = getattr(message, "anymail_status", None)
    secrets_ = send.context.pop("_secrets", [])
    with transaction.atomic():
        send.status = EmailSend.Status.SENT
        send.sent_at = timezone.now()
        send.provider = getattr(status, "esp_name", "") or ""
        send.provider_message_id = getattr(status, "message_id", "") or ""
        send.text_body = _redact(send.text_body, secrets_)
        send.html_body = _redact(send.html_body, secrets_)
        send.last_error = ""
        send.save()
        audit_record(
            event_type="email.sent",
            user_id=send.user_id,
            target_type="email_send",
            target_id=send.pk,
            metadata={"category": send.category},
        )


def _record_failure(send: EmailSend, exc: Exception) -> None:
    final = send.attempts >= settings.SV_EMAIL_MAX_ATTEMPTS
    logger.warning("delivery of email %s failed (attempt %s): %s", send.pk, send.attempts, exc)
    with transaction.atomic():
        send.status = EmailSend.Status.FAILED if final else EmailSend.Status.DEFERRED
        send.last_error = f"{type(exc).__name__}: {exc}"[:2000]
        send.save(update_fields=["status", "last_error", "updated_at"])
        if final:
            audit_record(
                event_type="email.failed",
                user_id=send.user_id,
                target_type="email_send",
                target_id=send.pk,
                metadata={"attempts": send.attempts, "error": type(exc).__name__},
            )
