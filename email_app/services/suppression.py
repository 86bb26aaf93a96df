"""Suppressed addresses: for good after a hard bounce or complaint, for a while after soft ones."""

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Max, Q
from django.db.models.functions import Lower
from django.utils import timezone

from audit_app.services import audit_record
from auth_app.models import User

from ..models import EmailSend, EmailSuppression, EmailWebhook

Reason = EmailSuppression.Reason


def now() -> datetime:
    """The current time: the seam tests move to cross counting windows and expiries."""
    return timezone.now()


def _address(email: str) -> str:
    # PostgreSQL's lower(), not Python's: the CHECK constraint compares with it,
    # and the two differ on a few non-ASCII letters.
    with connection.cursor() as cursor:
        cursor.execute("SELECT lower(%s)", [email])
        return cursor.fetchone()[0]


def suppression_in_force() -> Q:
    """The condition of a suppression in force now: not lifted, and not expired."""
    return Q(lifted_at__isnull=True) & (Q(expires_at__isnull=True) | Q(expires_at__gt=now()))


def suppression_active(*, to_email: str) -> EmailSuppression | None:
    """The suppression in force for this address now, if any."""
    address = _address(to_email)
    return EmailSuppression.objects.filter(suppression_in_force(), address=address).first()


def email_suppress(
    *, send: EmailSend, reason: str, provider: str, detail: str = ""
) -> EmailSuppression | None:
    """Suppress the send's address for `reason`; None when a suppression at least as
    strong is already in force (a soft one is not extended by more soft bounces)."""
    moment = now()
    address = _address(send.to_email)
    expires_at = None
    if reason == Reason.SOFT_BOUNCES:
        expires_at = moment + timedelta(seconds=settings.SV_EMAIL_SOFT_BOUNCE_SUPPRESSION)
    with transaction.atomic():
        row = EmailSuppression.objects.select_for_update().filter(address=address).first()
        if row is None:
            row = EmailSuppression(address=address, suppressed_at=moment)
            try:
                with transaction.atomic():
                    _suppression_fill(row, reason, detail, provider, send, moment, expires_at)
                    row.save(force_insert=True)
            except IntegrityError:
                # Another event suppressed the address at the same moment: apply ours on top.
                row = EmailSuppression.objects.select_for_update().get(address=address)
            else:
                _suppression_audit(row, send)
                return row
        held = EmailSuppression.objects.filter(suppression_in_force(), pk=row.pk).exists()
        if held and (row.expires_at is None or reason == Reason.SOFT_BOUNCES):
            return None
        _suppression_fill(row, reason, detail, provider, send, moment, expires_at)
        row.save()
        _suppression_audit(row, send)
    return row


def _suppression_fill(row, reason, detail, provider, send, moment, expires_at) -> None:
    row.reason = reason
    row.detail = detail[:2000]
    row.provider = provider
    row.send = send
    row.suppressed_at = moment
    row.expires_at = expires_at
    row.lifted_at = None
    row.lifted_by = None


def _suppression_audit(row: EmailSuppression, send: EmailSend) -> None:
    audit_record(
        event_type="email.address_suppressed",
        user_id=send.user_id,
        target_type="email_suppression",
        target_id=row.pk,
        metadata={
            "reason": row.reason,
            "provider": row.provider,
            "send_id": send.pk,
            # UTC with Z, as the API writes every timestamp.
            "expires_at": (
                row.expires_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
                if row.expires_at
                else None
            ),
        },
    )


def soft_bounce_count(*, send: EmailSend) -> int:
    """How many sends to this address soft-bounced in the current counting window.

    The window is SV_EMAIL_SOFT_BOUNCE_WINDOW long and starts again after a
    delivery to the address, and after the address was last suppressed or lifted:
    a mailbox that accepted mail since, or an operator's decision, wipes the slate.
    """
    moment = now()
    address = _address(send.to_email)
    starts = [moment - timedelta(seconds=settings.SV_EMAIL_SOFT_BOUNCE_WINDOW)]
    # Served by the index on lower(to_email).
    to_address = EmailSend.objects.alias(address=Lower("to_email")).filter(address=address)
    delivered = to_address.aggregate(last=Max("delivered_at"))["last"]
    row = EmailSuppression.objects.filter(address=address).first()
    candidates = [delivered]
    if row is not None:
        candidates += [row.suppressed_at, row.lifted_at]
    starts += [when for when in candidates if when is not None]
    return (
        EmailWebhook.objects.filter(
            event_type="soft_bounced", received_at__gt=max(starts), send__in=to_address
        )
        .values("send_id")
        .distinct()
        .count()
    )


def suppression_lift(*, suppression: EmailSuppression, actor: User | None) -> EmailSuppression:
    """Let mail go to the address again (an operator's decision); audited."""
    with transaction.atomic():
        row = EmailSuppression.objects.select_for_update().get(pk=suppression.pk)
        if row.lifted_at is not None:
            return row
        row.lifted_at = now()
        row.lifted_by = actor
        row.save(update_fields=["lifted_at", "lifted_by"])
        audit_record(
            event_type="email.suppression_lifted",
            actor_id=actor.pk if actor else None,
            target_type="email_suppression",
            target_id=row.pk,
            metadata={"reason": row.reason, "provider": row.provider},
        )
    return row
