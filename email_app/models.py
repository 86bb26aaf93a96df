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
            # The suppression list: addresses that hard-bounced or complained.
            models.Index(
                Lower("to_email"),
                condition=models.Q(status__in=["bounced", "complained"]),
                name="email_sends_suppressed_idx",
            ),
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
    event_type = models.CharField(max_length=50)
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

    def __str__(self):
        return f"{self.provider} {self.event_type} {self.event_id}"


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
