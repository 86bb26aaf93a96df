"""The append-only audit log (schema `audit`).

Event types are dotted names: user.created, user.updated, user.deleted,
user.email_verified, user.password_changed, user.password_reset_requested,
user.password_reset, auth.sign_in, auth.sign_in_failed, auth.sign_out,
auth.locked_out, session.revoked, role.created, role.updated, role.deleted,
role.assigned, role.revoked, email.queued, email.sent, email.failed,
email.bounced, email.complained, email.unsubscribed, email_template.changed,
admin.action.
"""

from django.db import models
from django.utils import timezone

from sv_sdk.db.tables import schema_table


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

    class Meta:
        db_table = schema_table("audit", "audit_logs")
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["user_id", "-occurred_at"], name="audit_user_time_idx"),
            models.Index(fields=["actor_id", "-occurred_at"], name="audit_actor_time_idx"),
            models.Index(fields=["event_type", "-occurred_at"], name="audit_event_time_idx"),
            models.Index(fields=["target_type", "target_id"], name="audit_target_idx"),
            models.Index(fields=["occurred_at"], name="audit_time_idx"),
        ]

    def __str__(self):
        return f"#{self.id} {self.event_type}"
