"""Email templates, the outbox, provider webhook events and preferences (schema `email`)."""

import json

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from sv_sdk.db.fields import EncryptedTextField, id_field
from sv_sdk.db.tables import schema_table

from .rendering import REDACTED

# Always delivered, whatever the user's preferences or suppressions.
ESSENTIAL_CATEGORIES = frozenset({"security", "account"})
# The account's security mail, by template key: superusers alone change these templates,
# and only the account flows send them (never `email:send`). Each names the secret links
# it carries (see docs/security.md, "Secret links"); no other template is given one.
SECURITY_TEMPLATES = {
    "verify-email": ("verify_url",),
    "reset-password": ("reset_url",),
    "password-changed": (),
}


class Category(models.TextChoices):
    SECURITY = "security"
    ACCOUNT = "account"
    PRODUCT = "product"
    MARKETING = "marketing"


class EmailTemplate(models.Model):
    id = id_field()
    key = models.SlugField(max_length=100)
    locale = models.CharField(max_length=20, default="en")
    subject = models.CharField(max_length=255)
    text_body = models.TextField()
    html_body = models.TextField(blank=True)
    description = models.TextField(blank=True)
    version = models.PositiveIntegerField(default=1)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = schema_table("email", "email_templates")
        constraints = [
            models.UniqueConstraint(
                fields=["key", "locale"], name="email_templates_key_locale_uniq"
            ),
        ]
        ordering = ["key", "locale"]

    def __str__(self):
        return f"{self.key} ({self.locale})"


class EmailSend(models.Model):
    """One email in the outbox, with the rendered snapshot that is (or was) delivered."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        SENDING = "sending"
        SENT = "sent"
        DELIVERED = "delivered"
        DEFERRED = "deferred"
        SOFT_BOUNCED = "soft_bounced"
        BOUNCED = "bounced"
        COMPLAINED = "complained"
        FAILED = "failed"
        SUPPRESSED = "suppressed"

    id = id_field()
    template = models.ForeignKey(
        EmailTemplate, on_delete=models.PROTECT, null=True, blank=True, related_name="sends"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="email_sends",
    )
    to_email = models.EmailField(max_length=254)
    category = models.CharField(max_length=20, choices=Category.choices)
    subject = models.CharField(max_length=255)
    text_body = models.TextField()
    html_body = models.TextField(blank=True)
    context = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    provider = models.CharField(max_length=50, blank=True)
    provider_message_id = models.CharField(max_length=255, blank=True)
    scheduled_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    clicked_at = models.DateTimeField(null=True, blank=True)
    # When a worker last moved the send to `sending`: committed before the
    # SMTP/API call, so a send left in `sending` by a crashed worker is found
    # again once SV_EMAIL_SENDING_TIMEOUT has passed.
    claimed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    idempotency_key = models.CharField(max_length=255, unique=True, null=True, blank=True)
    # The secret links of a queued email, {marker: [url, token]} as JSON, encrypted; the
    # bodies hold the markers. Emptied once the email is sent, failed or suppressed.
    links = EncryptedTextField(blank=True, default="")

    class Meta:
        db_table = schema_table("email", "email_sends")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "created_at"], name="email_sends_status_idx"),
            models.Index(fields=["user", "-created_at"], name="email_sends_user_idx"),
            models.Index(fields=["provider_message_id"], name="email_sends_provider_msg_idx"),
            # Every send to one address (any letter case): soft-bounce counting.
            models.Index(Lower("to_email"), name="email_sends_address_idx"),
        ]

    def __str__(self):
        return f"{self.category} to {self.to_email} ({self.status})"

    def link_values(self) -> dict[str, list[str]]:
        """The secret links still held for delivery: {marker: [url, token]}."""
        return json.loads(self.links) if self.links else {}

    def without_secrets(self, text: str) -> str:
        """`text` with the links this send holds, and their tokens, redacted by value."""
        for url, token in self.link_values().values():
            text = text.replace(url, REDACTED).replace(token, REDACTED)
        return text


class EmailWebhook(models.Model):
    """A provider event as received; unique per provider event so a replay changes nothing."""

    id = id_field()
    provider = models.CharField(max_length=50)
    event_id = models.CharField(max_length=255)
    # Anymail's normalised type, except that bounces are split into `bounced`
    # (hard: permanent) and `soft_bounced` (temporary) by the provider's own fields.
    event_type = models.CharField(max_length=50)
    # The provider's own words for a bounce, complaint or failure (SMTP reply, bounce type).
    reason = models.TextField(blank=True)
    payload = models.JSONField(default=dict)
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)
    send = models.ForeignKey(
        EmailSend, on_delete=models.SET_NULL, null=True, blank=True, related_name="webhooks"
    )

    class Meta:
        db_table = schema_table("email", "email_webhooks")
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "event_id"], name="email_webhooks_provider_event_uniq"
            ),
        ]
        ordering = ["-received_at"]
        indexes = [
            # Soft bounces in the counting window (few rows): see services.tracking.
            models.Index(
                fields=["received_at"],
                condition=models.Q(event_type="soft_bounced"),
                name="email_webhooks_soft_idx",
            ),
        ]

    def __str__(self):
        return f"{self.provider} {self.event_type} {self.event_id}"


class EmailSuppression(models.Model):
    """An address that non-essential mail must not go to, one row per address.

    Hard bounces and complaints suppress until an operator lifts it; repeated soft
    bounces suppress until `expires_at`. A lifted or expired row stays as the record
    and is reused when the address is suppressed again.
    """

    class Reason(models.TextChoices):
        HARD_BOUNCE = "hard_bounce"
        COMPLAINT = "complaint"
        SOFT_BOUNCES = "soft_bounces"

    id = id_field()
    # Lower-cased by PostgreSQL (see services.suppression), so one address is one row.
    address = models.CharField(max_length=254, unique=True)
    reason = models.CharField(max_length=20, choices=Reason.choices)
    # The provider's words for the bounce or complaint that suppressed the address.
    detail = models.TextField(blank=True)
    provider = models.CharField(max_length=50, blank=True)
    send = models.ForeignKey(
        EmailSend, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    suppressed_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        db_table = schema_table("email", "email_suppressions")
        ordering = ["-suppressed_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(address=Lower("address")),
                name="email_suppressions_address_lower_check",
            ),
            # ORed equalities, not IN: PostgreSQL prints an IN over varchar in a form that
            # a dump and restore does not reproduce word for word.
            models.CheckConstraint(
                condition=models.Q(reason="hard_bounce")
                | models.Q(reason="complaint")
                | models.Q(reason="soft_bounces"),
                name="email_suppressions_reason_check",
            ),
            # Only soft bounces expire; a hard bounce or a complaint lasts until lifted.
            models.CheckConstraint(
                condition=models.Q(reason="soft_bounces", expires_at__isnull=False)
                | models.Q(~models.Q(reason="soft_bounces"), expires_at__isnull=True),
                name="email_suppressions_expiry_check",
            ),
            models.CheckConstraint(
                condition=models.Q(lifted_by__isnull=True) | models.Q(lifted_at__isnull=False),
                name="email_suppressions_lifted_check",
            ),
        ]

    def __str__(self):
        return f"{self.address} ({self.reason})"


class EmailPreference(models.Model):
    id = id_field()
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="email_preferences"
    )
    category = models.CharField(max_length=20, choices=Category.choices)
    subscribed = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = schema_table("email", "email_preferences")
        constraints = [
            models.UniqueConstraint(
                fields=["user", "category"], name="email_preferences_user_category_uniq"
            ),
        ]

    def __str__(self):
        return f"{self.user_id} {self.category}={self.subscribed}"
