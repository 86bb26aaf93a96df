"""The email domain's writes: templates, the outbox, delivery, provider events, preferences."""

import logging
import smtplib
from collections.abc import Iterable
from datetime import datetime, timedelta
from email.utils import parseaddr

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import IntegrityError, transaction
from django.db.models import Case, F, Q, Value, When
from django.db.models.functions import Lower
from django.template import TemplateSyntaxError
from django.utils import timezone

from audit_app.models import AuditLog
from audit_app.services import audit_event, audit_record, audit_write
from auth_app.models import User
from sv_sdk import metrics
from sv_sdk.db.batch import Batch
from sv_sdk.errors import ValidationFailed
from sv_sdk.jobs import defer_statement

from .errors import ResendImpossible, TemplateExists, TemplateNotFound
from .models import (
    ESSENTIAL_CATEGORIES,
    REDACTED,
    Category,
    EmailPreference,
    EmailSend,
    EmailTemplate,
    EmailWebhook,
)
from .rendering import check_syntax, render
from .selectors import unsubscribe_subject
from .unsubscribe import unsubscribe_url

logger = logging.getLogger(__name__)

Status = EmailSend.Status


# Templates ---------------------------------------------------------------------------------

TEMPLATE_FIELDS = ("subject", "text_body", "html_body", "description", "is_active")
_TEMPLATE_SOURCES = ("subject", "text_body", "html_body")


def template_get(*, key: str, locale: str | None = None) -> EmailTemplate:
    """The active template for key and locale, falling back to the default locale."""
    batch = Batch()
    found = batch.select(EmailTemplate, *template_candidates(key=key, locale=locale))
    return template_choose(batch.run()[found], key=key, locale=locale)


def template_candidates(*, key: str, locale: str | None = None) -> tuple[str, list]:
    """The condition and values of the active templates template_get chooses from.

    For `Batch.select(EmailTemplate, ...)`: the locale's and the default locale's.
    """
    locales = [loc for loc in (locale, settings.SV_DEFAULT_LOCALE) if loc]
    return '"key" = %s AND "locale" = ANY(%s) AND "is_active"', [key, locales]


def template_choose(
    templates: Iterable[EmailTemplate], *, key: str, locale: str | None = None
) -> EmailTemplate:
    """The locale's template from `templates`, else the default locale's."""
    by_locale = {t.locale: t for t in templates}
    for loc in (locale, settings.SV_DEFAULT_LOCALE):
        if loc and loc in by_locale:
            return by_locale[loc]
    raise TemplateNotFound(f"no active email template {key!r}")


def _check_template_sources(sources: dict) -> None:
    errors = {}
    for field in _TEMPLATE_SOURCES:
        if field in sources:
            try:
                check_syntax(sources[field] or "")
            except TemplateSyntaxError as exc:
                errors[field] = [f"Template syntax error: {exc}"]
    if errors:
        raise ValidationFailed(errors=errors)


def template_create(
    *,
    key: str,
    locale: str,
    subject: str,
    text_body: str,
    html_body: str = "",
    description: str = "",
    is_active: bool = True,
    actor: User | None = None,
) -> EmailTemplate:
    """Create a template (version 1); raise TemplateExists for a taken key and locale."""
    fields = {
        "subject": subject,
        "text_body": text_body,
        "html_body": html_body,
        "description": description,
        "is_active": is_active,
    }
    _check_template_sources(fields)
    template = EmailTemplate(key=key, locale=locale, **fields)
    with transaction.atomic():
        try:
            with transaction.atomic():
                template.save(force_insert=True)
        except IntegrityError as exc:
            if "email_templates_key_locale_uniq" in str(exc):
                raise TemplateExists() from None
            raise
        _template_audit(template, actor=actor, changed=["created"])
    return template


def template_update(
    *, template: EmailTemplate, actor: User | None = None, **changes
) -> EmailTemplate:
    """Change a template's content; every real change bumps its version and is audited."""
    unknown = set(changes) - set(TEMPLATE_FIELDS)
    if unknown:
        raise ValidationFailed(errors={f: ["This field cannot be changed."] for f in unknown})
    _check_template_sources(changes)
    with transaction.atomic():
        # The lock makes concurrent edits bump the version one after the other.
        locked = EmailTemplate.objects.select_for_update().get(pk=template.pk)
        changed = sorted(f for f, v in changes.items() if getattr(locked, f) != v)
        if changed:
            for field in changed:
                setattr(locked, field, changes[field])
            locked.version += 1
            locked.save()
            _template_audit(locked, actor=actor, changed=changed)
    for field in (*TEMPLATE_FIELDS, "version", "updated_at"):
        setattr(template, field, getattr(locked, field))
    return template


def _template_audit(template: EmailTemplate, *, actor: User | None, changed: list[str]) -> None:
    audit_record(
        event_type="email_template.changed",
        actor_id=actor.pk if actor else None,
        target_type="email_template",
        target_id=template.pk,
        metadata={
            "key": template.key,
            "locale": template.locale,
            "version": template.version,
            "changed": changed,
        },
    )


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
    # Served by the partial index on lower(to_email) of bounced and complained sends.
    if (
        EmailSend.objects.alias(address=Lower("to_email"))
        .filter(address=Lower(Value(to_email)), status__in=[Status.BOUNCED, Status.COMPLAINED])
        .exists()
    ):
        return "address hard-bounced or complained"
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
    from .tasks import email_deliver

    if send._state.adding:
        _status_set(send)
        batch.insert(send)
    if send.status == Status.QUEUED:
        batch.add(*defer_statement(email_deliver, send_id=send.pk))
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


class DeliveryDeferred(Exception):
    """A transient delivery failure: the job tries again in `retry_in` seconds."""

    def __init__(self, send_id: str, retry_in: float, reason: str):
        super().__init__(f"email {send_id} deferred for {retry_in:g}s: {reason}")
        self.retry_in = retry_in


def _claim(send_id: str) -> EmailSend | None:
    """Move a deliverable send to `sending`, committed before any SMTP/API call."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.SV_EMAIL_SENDING_TIMEOUT)
    with transaction.atomic():
        send = (
            EmailSend.objects.select_for_update(skip_locked=True)
            .filter(
                Q(status__in=[Status.QUEUED, Status.DEFERRED])
                # Left in `sending` by a worker that died: its lease has run out.
                | Q(status=Status.SENDING, claimed_at__lt=stale),
                pk=send_id,
            )
            .first()
        )
        if send is None:
            return None  # delivered, final, or claimed by another worker
        reason = suppression_reason(
            to_email=send.to_email, user_id=send.user_id, category=send.category
        )
        if reason:
            # Unsubscribed, bounced or complained since it was queued.
            send.status = Status.SUPPRESSED
            send.last_error = reason
            send.save(update_fields=["status", "last_error", "updated_at"])
            audit_record(
                event_type="email.suppressed",
                user_id=send.user_id,
                target_type="email_send",
                target_id=send.pk,
                metadata={"category": send.category, "status": send.status},
            )
            return send
        if send.status == Status.SENDING and send.attempts >= settings.SV_EMAIL_MAX_ATTEMPTS:
            # A message that keeps killing its worker must not loop forever.
            _fail(send, error="the worker stopped during every delivery attempt")
            return send
        send.status = Status.SENDING
        send.attempts += 1
        send.claimed_at = now
        send.save(update_fields=["status", "attempts", "claimed_at", "updated_at"])
    return send


def _is_anymail_backend() -> bool:
    return settings.EMAIL_BACKEND.startswith("anymail.")


def message_id_for(send_id: str) -> str:
    """The Message-ID of every attempt of one send, so a repeat is recognisable."""
    domain = parseaddr(settings.DEFAULT_FROM_EMAIL)[1].rpartition("@")[2] or "localhost"
    return f"<{send_id}@{domain}>"


def _message(send: EmailSend) -> EmailMultiAlternatives:
    headers = {}
    if not _is_anymail_backend():
        # SMTP: the same Message-ID on every attempt lets receivers drop a
        # duplicate from the doubt window (see docs/email.md). ESPs set their own.
        headers["Message-ID"] = message_id_for(send.pk)
    if send.category not in ESSENTIAL_CATEGORIES and send.user_id:
        headers["List-Unsubscribe"] = (
            f"<{unsubscribe_url(user_id=send.user_id, category=send.category)}>"
        )
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message = EmailMultiAlternatives(
        subject=send.subject,
        body=send.text_body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[send.to_email],
        headers=headers,
    )
    if send.html_body:
        message.attach_alternative(send.html_body, "text/html")
    # Anymail passes metadata to the ESP, whose webhooks echo it back: the
    # event finds its send even before the provider's message id is stored.
    message.metadata = {"send_id": send.pk}
    return message


def email_deliver(*, send_id: str) -> EmailSend | None:
    """Claim a send, deliver it through Django's email backend, record the outcome.

    Raises DeliveryDeferred after a transient failure that has attempts left.
    """
    send = _claim(send_id)
    if send is None or send.status != Status.SENDING:
        return send
    message = _message(send)
    connection = get_connection()
    try:
        connection.open()
        connection.send_messages([message])
    except Exception as exc:
        _close_quietly(connection)
        _record_failure(send, exc)
        return send
    # Recorded before QUIT: the window where a crash loses the fact that the
    # server accepted the message is one UPDATE and one INSERT wide.
    _record_success(send, message)
    _close_quietly(connection)
    return send


def _close_quietly(connection) -> None:
    try:
        connection.close()
    except Exception as exc:  # the message is already accepted or already failed
        logger.info("closing the email connection failed: %s", exc)


def _provider_name() -> str:
    # "smtp", "console", "locmem", or the ESP for anymail backends ("resend", ...).
    return settings.EMAIL_BACKEND.rsplit(".", 2)[-2]


def _record_success(send: EmailSend, message: EmailMultiAlternatives) -> None:
    status = getattr(message, "anymail_status", None)
    if status is not None:
        send.provider = (status.esp_name or _provider_name()).lower()
        send.provider_message_id = status.message_id or ""
    else:
        send.provider = _provider_name()
        send.provider_message_id = message.extra_headers["Message-ID"]
    send.text_body = send.without_secrets(send.text_body)
    send.html_body = send.without_secrets(send.html_body)
    send.context.pop("_secrets", None)
    send.sent_at = timezone.now()
    with transaction.atomic():
        # A provider event that arrived first may already have moved the status on.
        EmailSend.objects.filter(pk=send.pk).update(
            status=Case(
                When(
                    status__in=[Status.SENDING, Status.QUEUED, Status.DEFERRED],
                    then=Value(Status.SENT),
                ),
                default=F("status"),
            ),
            sent_at=send.sent_at,
            provider=send.provider,
            provider_message_id=send.provider_message_id,
            text_body=send.text_body,
            html_body=send.html_body,
            context=send.context,
            last_error="",
            updated_at=send.sent_at,
        )
        audit_record(
            event_type="email.sent",
            user_id=send.user_id,
            target_type="email_send",
            target_id=send.pk,
            metadata={"category": send.category, "provider": send.provider},
        )
    send.status = Status.SENT
    send.last_error = ""


def _is_permanent(exc: Exception) -> bool:
    """Whether retrying cannot help: the server or ESP refused the message itself."""
    from anymail.exceptions import AnymailAPIError, AnymailInvalidAddress, AnymailRecipientsRefused

    if isinstance(exc, AnymailRecipientsRefused | AnymailInvalidAddress):
        return True
    if isinstance(exc, AnymailAPIError):
        code = exc.status_code or 0
        return 400 <= code < 500 and code not in (408, 429)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(500 <= code < 600 for code, _msg in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPResponseException):
        return 500 <= exc.smtp_code < 600
    return False


def _record_failure(send: EmailSend, exc: Exception) -> None:
    error = f"{type(exc).__name__}: {exc}"[:2000]
    if _is_permanent(exc) or send.attempts >= settings.SV_EMAIL_MAX_ATTEMPTS:
        logger.warning("delivery of email %s failed for good: %s", send.pk, error)
        with transaction.atomic():
            _fail(send, error=error)
        return
    retry_in = settings.SV_EMAIL_RETRY_BASE_SECONDS * 2 ** (send.attempts - 1)
    logger.warning(
        "delivery of email %s failed (attempt %s), retrying in %gs: %s",
        send.pk,
        send.attempts,
        retry_in,
        error,
    )
    send.status = Status.DEFERRED
    send.last_error = error
    send.scheduled_at = timezone.now() + timedelta(seconds=retry_in)
    EmailSend.objects.filter(pk=send.pk, status=Status.SENDING).update(
        status=send.status,
        last_error=error,
        scheduled_at=send.scheduled_at,
        updated_at=timezone.now(),
    )
    metrics.count_on_commit(metrics.EMAILS, status=Status.DEFERRED)
    raise DeliveryDeferred(send.pk, retry_in, error)


def _fail(send: EmailSend, *, error: str) -> None:
    send.status = Status.FAILED
    send.last_error = error
    send.save(update_fields=["status", "last_error", "updated_at"])
    audit_record(
        event_type="email.failed",
        user_id=send.user_id,
        target_type="email_send",
        target_id=send.pk,
        metadata={"attempts": send.attempts, "category": send.category},
    )


def email_recover_stalled() -> int:
    """Queue again the sends left in `sending` past SV_EMAIL_SENDING_TIMEOUT; return how many.

    Their worker died between claiming and recording the outcome. The new
    attempt claims them under the same lease rule, so two recoveries never
    deliver one send twice.
    """
    from procrastinate.exceptions import AlreadyEnqueued

    from .tasks import email_deliver

    stale = timezone.now() - timedelta(seconds=settings.SV_EMAIL_SENDING_TIMEOUT)
    send_ids = list(
        EmailSend.objects.filter(status=Status.SENDING, claimed_at__lt=stale)
        .order_by("claimed_at")
        .values_list("pk", flat=True)[:1000]
    )
    queued = 0
    for send_id in send_ids:
        try:
            # A savepoint: a refused duplicate must not abort a caller's transaction.
            with transaction.atomic():
                email_deliver.configure(queueing_lock=f"email-recover:{send_id}").defer(
                    send_id=send_id
                )
        except AlreadyEnqueued:
            continue
        queued += 1
    if queued:
        logger.warning("re-queued %s email(s) left in 'sending' by a stopped worker", queued)
    return queued


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


# Preferences -------------------------------------------------------------------------------


def preference_set(
    *,
    user: User,
    category: str,
    subscribed: bool,
    actor: User | None = None,
    source: str = "preferences",
) -> EmailPreference:
    """Subscribe or unsubscribe a user from a non-essential category; audit real changes."""
    if category not in Category.values:
        raise ValidationFailed(errors={category: ["Unknown email category."]})
    if category in ESSENTIAL_CATEGORIES and not subscribed:
        raise ValidationFailed(errors={category: ["Security and account emails are always sent."]})
    with transaction.atomic():
        before = (
            EmailPreference.objects.select_for_update()
            .filter(user=user, category=category)
            .values_list("subscribed", flat=True)
            .first()
        )
        # An upsert: two first-time changes at once must not collide on the unique key.
        (preference,) = EmailPreference.objects.bulk_create(
            [EmailPreference(user=user, category=category, subscribed=subscribed)],
            update_conflicts=True,
            unique_fields=["user", "category"],
            update_fields=["subscribed", "updated_at"],
        )
        if (True if before is None else before) != subscribed:
            audit_record(
                event_type="email.subscribed" if subscribed else "email.unsubscribed",
                actor_id=actor.pk if actor else None,
                user_id=user.pk,
                target_type="email_preference",
                target_id=preference.pk,
                metadata={"category": category, "source": source},
            )
    return preference


def email_unsubscribe(*, token: str) -> tuple[User, str]:
    """Honour a one-click unsubscribe token; raise UnsubscribeTokenInvalid if forged or stale."""
    user, category = unsubscribe_subject(token=token)
    preference_set(user=user, category=category, subscribed=False, actor=user, source="link")
    return user, category
