"""The append-only audit log and its signed checkpoints (schema `audit`).

Both tables are append-only in PostgreSQL (see migration 0002 and docs/audit.md).
"""

from django.db import models
from django.utils import timezone

from sv_sdk.db.tables import schema_table

# The event types DESIGN §3 lists, plus the audit domain's own. Other values are
# accepted (the log records what happened), these are offered as admin filters.
EVENT_TYPES = (
    "user.created",
    "user.imported",
    "user.updated",
    "user.deleted",
    "user.exported",
    "user.email_verified",
    "user.password_changed",
    "user.password_reset_requested",
    "user.password_reset",
    "user.password_check_failed",
    "auth.sign_in",
    "auth.sign_in_failed",
    "auth.sign_out",
    "auth.locked_out",
    "session.revoked",
    "role.created",
    "role.updated",
    "role.deleted",
    "role.assigned",
    "role.revoked",
    "email.queued",
    "email.sent",
    "email.failed",
    "email.soft_bounced",
    "email.bounced",
    "email.complained",
    "email.unsubscribed",
    "email.subscribed",
    "email.suppressed",
    "email.address_suppressed",
    "email.suppression_lifted",
    "email_template.changed",
    "admin.action",
    "audit.pruned",
)


# What readers of the log see (API, export): every column but the row's MAC.
READABLE_FIELDS = (
    "id",
    "occurred_at",
    "event_type",
    "actor_id",
    "user_id",
    "target_type",
    "target_id",
    "metadata",
    "ip_address",
    "user_agent",
    "request_id",
)


class AuditLog(models.Model):
    id = models.BigAutoField(primary_key=True)
    occurred_at = models.DateTimeField(default=timezone.now, editable=False)
    event_type = models.CharField(max_length=100)
    # Plain ids, no foreign keys: the trail outlives the users it mentions.
    actor_id = models.CharField(max_length=36, null=True, blank=True)
    user_id = models.CharField(max_length=36, null=True, blank=True)
    target_type = models.CharField(max_length=100, blank=True)
    target_id = models.CharField(max_length=100, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.TextField(blank=True)
    request_id = models.CharField(max_length=100, blank=True)
    # HMAC-SHA256 (hex) of the row's id and content; empty only for rows written
    # without audit_record, which audit_verify reports.
    row_mac = models.CharField(max_length=64, blank=True, editable=False)

    class Meta:
        db_table = schema_table("audit", "audit_logs")
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["user_id", "-occurred_at"], name="audit_user_time_idx"),
            models.Index(fields=["actor_id", "-occurred_at"], name="audit_actor_time_idx"),
            models.Index(fields=["event_type", "-occurred_at"], name="audit_event_time_idx"),
            models.Index(
                fields=["target_type", "target_id", "-occurred_at"],
                name="audit_target_time_idx",
            ),
            models.Index(fields=["occurred_at"], name="audit_time_idx"),
            models.Index(
                fields=["request_id"],
                name="audit_request_idx",
                condition=~models.Q(request_id=""),
            ),
        ]

    def __str__(self):
        return f"#{self.id} {self.event_type}"


class AuditCheckpoint(models.Model):
    """A signed statement of which audit rows existed in (after_id, last_id].

    Checkpoints chain (previous_mac) and tile the id space, so a deleted row or
    a row slipped into a covered range shows up in audit_verify.
    """

    id = models.BigAutoField(primary_key=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    after_id = models.BigIntegerField()
    last_id = models.BigIntegerField()
    row_count = models.BigIntegerField()
    # Ids in the range that belong to no committed row (rolled-back inserts),
    # as [first, last] runs.
    missing_ids = models.JSONField(default=list, blank=True)
    digest = models.CharField(max_length=64)
    previous_mac = models.CharField(max_length=64, blank=True)
    mac = models.CharField(max_length=64)

    class Meta:
        db_table = schema_table("audit", "audit_checkpoints")
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["after_id"], name="audit_checkpoint_after_uniq"),
            models.CheckConstraint(
                condition=models.Q(last_id__gt=models.F("after_id")),
                name="audit_checkpoint_range_check",
            ),
        ]

    def __str__(self):
        return f"checkpoint #{self.id} ({self.after_id}, {self.last_id}]"
