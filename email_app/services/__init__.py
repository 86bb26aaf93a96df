"""The email domain's writes, one module per concern; the public services, by name."""

from .delivery import DeliveryDeferred, email_deliver, email_recover_stalled, message_id_for
from .outbox import (
    SecretLink,
    email_build,
    email_enqueue,
    email_queue,
    email_resend,
    suppression_reason,
)
from .preferences import email_unsubscribe, preference_set
from .suppression import (
    email_suppress,
    suppression_active,
    suppression_in_force,
    suppression_lift,
)
from .templates import (
    template_candidates,
    template_choose,
    template_create,
    template_editable,
    template_get,
    template_sources_check,
    template_update,
)
from .tracking import email_webhook_record

__all__ = [
    "DeliveryDeferred",
    "SecretLink",
    "email_build",
    "email_deliver",
    "email_enqueue",
    "email_queue",
    "email_recover_stalled",
    "email_resend",
    "email_suppress",
    "email_unsubscribe",
    "email_webhook_record",
    "message_id_for",
    "preference_set",
    "suppression_active",
    "suppression_in_force",
    "suppression_lift",
    "suppression_reason",
    "template_candidates",
    "template_choose",
    "template_create",
    "template_editable",
    "template_get",
    "template_sources_check",
    "template_update",
]
