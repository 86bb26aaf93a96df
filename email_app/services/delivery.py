"""Delivery: claim a queued send, hand it to the email backend, record the outcome."""

import logging
import smtplib
from datetime import timedelta
from email.utils import parseaddr

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import connection, transaction
from django.utils import timezone
from django.utils.html import escape
from procrastinate.exceptions import AlreadyEnqueued

from audit_app.services import audit_record
from sv_sdk import metrics
from sv_sdk.db.batch import Batch
from sv_sdk.db.rows import model_row
from sv_sdk.jobs import deferrer

from ..connections import connection_borrow, connection_release
from ..models import (
    ESSENTIAL_CATEGORIES,
    EmailSend,
)
from ..unsubscribe import unsubscribe_url
from .outbox import DELIVER_TASK, suppression_reason

logger = logging.getLogger(__name__)

Status = EmailSend.Status


class DeliveryDeferred(Exception):
    """A transient delivery failure: the job tries again in `retry_in` seconds."""

    def __init__(self, send_id: str, retry_in: float, reason: str):
        super().__init__(f"email {send_id} deferred for {retry_in:g}s: {reason}")
        self.retry_in = retry_in


_TABLE = EmailSend._meta.db_table

# The claim of the usual case in one statement: a queued or deferred send, or one
# whose worker died (its lease ran out) with attempts left. The CTE keeps the
# previous claimed_at, put back if the send turns out to be suppressed.
_CLAIM_SQL = f"""
WITH claimable AS (
    SELECT id, claimed_at FROM {_TABLE}
    WHERE id = %(id)s AND (
        status = ANY(%(open)s)
        OR (status = %(sending)s AND claimed_at < %(stale)s AND attempts < %(max_attempts)s)
    )
    FOR UPDATE SKIP LOCKED
)
UPDATE {_TABLE} AS s
SET status = %(sending)s, attempts = s.attempts + 1, claimed_at = %(now)s, updated_at = %(now)s
FROM claimable WHERE s.id = claimable.id
RETURNING {{columns}}, claimable.claimed_at
"""  # noqa: S608 (the table name is the model's)


def _claim(send_id: str) -> EmailSend | None:
    """Move a deliverable send to `sending`, committed before any SMTP/API call."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.SV_EMAIL_SENDING_TIMEOUT)
    row = model_row(EmailSend)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                _CLAIM_SQL.format(columns=row.columns("s")),
                {
                    "id": send_id,
                    "open": [Status.QUEUED, Status.DEFERRED],
                    "sending": Status.SENDING,
                    "stale": stale,
                    "max_attempts": settings.SV_EMAIL_MAX_ATTEMPTS,
                    "now": now,
                },
            )
            claimed = cursor.fetchone()
        if claimed is None:
            return _claim_exhausted(send_id, stale)
        *values, claimed_before = claimed
        send = row.build(values, connection)
        if _suppress_if_needed(send):
            # Not an attempt: the claim is undone along with it.
            EmailSend.objects.filter(pk=send.pk).update(
                attempts=send.attempts - 1, claimed_at=claimed_before
            )
            send.attempts -= 1
            send.claimed_at = claimed_before
    return send


def _claim_exhausted(send_id: str, stale) -> EmailSend | None:
    """Fail a send left in `sending` by a worker that died during its last attempt.

    None when the send is delivered, final or claimed by another worker.
    """
    send = (
        EmailSend.objects.select_for_update(skip_locked=True)
        .filter(pk=send_id, status=Status.SENDING, claimed_at__lt=stale)
        .first()
    )
    if send is None:
        return None
    if not _suppress_if_needed(send):
        # A message that keeps killing its worker must not loop forever.
        _fail(send, error="the worker stopped during every delivery attempt")
    return send


def _suppress_if_needed(send: EmailSend) -> bool:
    """Suppress a send whose address unsubscribed, bounced or complained since it was queued."""
    reason = suppression_reason(
        to_email=send.to_email, user_id=send.user_id, category=send.category
    )
    if not reason:
        return False
    _end(
        send,
        status=Status.SUPPRESSED,
        error=reason,
        event_type="email.suppressed",
        metadata={"category": send.category, "status": Status.SUPPRESSED},
    )
    return True


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
    # The secret links go in here, into the message only: the row keeps the markers.
    text_body, html_body = send.text_body, send.html_body
    for marker, (url, _token) in send.link_values().items():
        text_body = text_body.replace(marker, url)
        html_body = html_body.replace(marker, escape(url))
    message = EmailMultiAlternatives(
        subject=send.subject,
        body=text_body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[send.to_email],
        headers=headers,
    )
    if html_body:
        message.attach_alternative(html_body, "text/html")
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
    connection = None
    try:
        # Kept open between deliveries: a worker busy with many sends opens one
        # connection per concurrent delivery, not one per message.
        connection = connection_borrow()
        connection.send_messages([message])
    except Exception as exc:
        if connection is not None:
            connection_release(connection, reusable=False)
        _record_failure(send, exc)
        return send
    try:
        # Recorded before the connection carries anything else: the window where
        # a crash loses the fact that the server accepted the message is one
        # round trip (an UPDATE and an INSERT) wide.
        _record_success(send, message)
    except BaseException:
        connection_release(connection, reusable=False)
        raise
    connection_release(connection, reusable=True)
    return send


def _provider_name() -> str:
    # "smtp", "console", "locmem", or the ESP for anymail backends ("resend", ...).
    return settings.EMAIL_BACKEND.rsplit(".", 2)[-2]


# A provider event that arrived first may already have moved the status on.
_SENT_SQL = f"""
UPDATE {_TABLE}
SET status = CASE WHEN status = ANY(%(unsent)s) THEN %(sent)s ELSE status END,
    sent_at = %(sent_at)s, provider = %(provider)s, provider_message_id = %(message_id)s,
    links = '', last_error = '', updated_at = %(sent_at)s
WHERE id = %(id)s
"""  # noqa: S608 (the table name is the model's)


def _record_success(send: EmailSend, message: EmailMultiAlternatives) -> None:
    status = getattr(message, "anymail_status", None)
    send.provider = _provider_name()
    if status is not None:
        send.provider_message_id = status.message_id or ""
    else:
        send.provider_message_id = message.extra_headers["Message-ID"]
    send.links = ""
    send.sent_at = timezone.now()
    # The UPDATE and the audit row's INSERT go in one round trip, one transaction.
    batch = Batch()
    batch.add(
        _SENT_SQL,
        {
            "sent": Status.SENT,
            "unsent": [Status.SENDING, Status.QUEUED, Status.DEFERRED],
            "sent_at": send.sent_at,
            "provider": send.provider,
            "message_id": send.provider_message_id,
            "id": send.pk,
        },
    )
    audit_record(
        event_type="email.sent",
        user_id=send.user_id,
        target=send,
        metadata={"category": send.category, "provider": send.provider},
        batch=batch,
    )
    batch.run()
    send.status = Status.SENT
    send.last_error = ""


def _esp_status(exc: Exception) -> int | None:
    """The HTTP status of an ESP's refusal (boto3's for Amazon SES), if it answered."""
    status = getattr(exc, "status_code", None)
    response = getattr(exc, "response", None)
    if status is None and isinstance(response, dict):
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status


def _esp_reason(exc: Exception) -> str:
    """The provider's own words for a refusal: the message field of its error answer."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):  # boto3 (Amazon SES)
        error = response.get("Error", {})
        return ": ".join(filter(None, [error.get("Code"), error.get("Message")]))
    try:
        body = response.json()
    except Exception:  # no answer, or not JSON: the exception says what happened
        return ""
    if not isinstance(body, dict):
        return ""
    # Resend and Mailgun say "message", Postmark "Message" (with its ErrorCode).
    return str(body.get("message") or body.get("Message") or "")


def _retry_after(exc: Exception) -> int:
    """The seconds an ESP's Retry-After header asks for (0 when it sends none)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):  # boto3 (Amazon SES)
        headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    else:
        headers = getattr(response, "headers", None) or {}
    value = str(headers.get("retry-after") or headers.get("Retry-After") or "")
    return int(value) if value.isdigit() else 0


def _is_timeout(exc: Exception) -> bool:
    """Whether the call may have gone through: no answer came before the timeout."""
    from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError
    from requests.exceptions import ConnectTimeout, ReadTimeout

    if isinstance(exc, ConnectTimeout) or isinstance(exc.__cause__, ConnectTimeoutError):
        return False  # never connected: nothing was sent
    if isinstance(exc, smtplib.SMTPServerDisconnected) and isinstance(
        exc.__context__, TimeoutError
    ):
        return True  # smtplib reports a reply that never came as a disconnection
    return isinstance(exc, ReadTimeout | TimeoutError) or isinstance(
        exc.__cause__, ReadTimeoutError | TimeoutError
    )


def _is_permanent(exc: Exception) -> bool:
    """Whether retrying cannot help: the server or ESP refused the message itself."""
    from anymail.exceptions import AnymailAPIError, AnymailInvalidAddress, AnymailRecipientsRefused

    if isinstance(exc, AnymailRecipientsRefused | AnymailInvalidAddress):
        return True
    if isinstance(exc, AnymailAPIError):
        code = _esp_status(exc) or 0
        return 400 <= code < 500 and code not in (408, 429)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(500 <= code < 600 for code, _msg in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPResponseException):
        return 500 <= exc.smtp_code < 600
    return False


def _error_text(exc: Exception) -> str:
    status, reason = _esp_status(exc), _esp_reason(exc)
    if reason:
        # The ESP refused: its status and words, not anymail's dump of the request.
        text = f"{_provider_name()} answered {status}: {reason}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    if _is_timeout(exc):
        # The doubt window (docs/email.md): it may have been accepted; the retry
        # carries the same send id, so a duplicate is recognisable.
        text = f"timed out, the message may have been sent: {text}"
    return text[:2000]


def _record_failure(send: EmailSend, exc: Exception) -> None:
    # A server may quote the message back: no token reaches the row or the log.
    error = send.without_secrets(_error_text(exc))
    if _is_permanent(exc) or send.attempts >= settings.SV_EMAIL_MAX_ATTEMPTS:
        logger.warning("delivery of email %s failed for good: %s", send.pk, error)
        with transaction.atomic():
            _fail(send, error=error)
        return
    # An ESP that says when to come back (429 Retry-After) is not asked sooner.
    retry_in = max(
        settings.SV_EMAIL_RETRY_BASE_SECONDS * 2 ** (send.attempts - 1), _retry_after(exc)
    )
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
    _end(
        send,
        status=Status.FAILED,
        error=error,
        event_type="email.failed",
        metadata={"attempts": send.attempts, "category": send.category},
    )


def _end(send: EmailSend, *, status: str, error: str, event_type: str, metadata: dict) -> None:
    """A send that will never be delivered: its final status and why, audited."""
    send.status = status
    send.last_error = error
    send.links = ""  # never delivered now: its links are dropped
    send.save(update_fields=["status", "last_error", "links", "updated_at"])
    audit_record(event_type=event_type, user_id=send.user_id, target=send, metadata=metadata)


def email_recover_stalled() -> int:
    """Queue again the sends left in `sending` past SV_EMAIL_SENDING_TIMEOUT; return how many.

    Their worker died between claiming and recording the outcome. The new
    attempt claims them under the same lease rule, so two recoveries never
    deliver one send twice.
    """
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
                deferrer(DELIVER_TASK, queueing_lock=f"email-recover:{send_id}").defer(
                    send_id=send_id
                )
        except AlreadyEnqueued:
            continue
        queued += 1
    if queued:
        logger.warning("re-queued %s email(s) left in 'sending' by a stopped worker", queued)
    return queued
