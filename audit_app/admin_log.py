"""Every change made in the Django admin becomes an `admin.action` audit row.

The admin writes a LogEntry for each addition, change and deletion; that is the
framework hook used here. Field names come from the entry's change message,
which names fields and never holds their values.
"""

import functools
import json
from contextvars import ContextVar

from django.conf import settings
from django.contrib.admin.actions import delete_selected
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.db import transaction

from .services import audit_record

_ACTIONS = {ADDITION: "added", CHANGE: "changed", DELETION: "deleted"}

# Set while delete_selected runs: its entries are recorded once it returns.
_bulk_deletion: ContextVar[bool] = ContextVar("admin_bulk_deletion", default=False)


def _changes(change_message: str) -> tuple[list[str], list[dict]]:
    """(changed field names, changes to related objects) of a LogEntry message."""
    try:
        messages = json.loads(change_message) if change_message else []
    except json.JSONDecodeError:
        return [], []
    fields: list[str] = []
    related: list[dict] = []
    for message in messages if isinstance(messages, list) else []:
        for action, detail in message.items():
            if action == "changed" and "name" not in detail:
                fields += [str(name) for name in detail.get("fields", [])]
            elif isinstance(detail, dict) and "name" in detail:
                related.append(
                    {
                        "action": action,
                        "model": str(detail["name"]),
                        "object": str(detail.get("object", ""))[:200],
                        "fields": [str(name) for name in detail.get("fields", [])],
                    }
                )
    return fields, related


def record_admin_action(entry: LogEntry) -> None:
    content_type = entry.content_type
    app_label = content_type.app_label if content_type else ""
    model = content_type.model if content_type else ""
    fields, related = _changes(entry.change_message)
    metadata = {
        "app": app_label,
        "model": model,
        "object_id": entry.object_id,
        "object": entry.object_repr,
        "action": _ACTIONS.get(entry.action_flag, str(entry.action_flag)),
        "changed_fields": fields,
    }
    if related:
        metadata["related"] = related
    # A user object's events also belong to that user's trail.
    is_user = f"{app_label}.{model}" == settings.AUTH_USER_MODEL.lower()
    audit_record(
        event_type="admin.action",
        actor_id=str(entry.user_id),
        user_id=entry.object_id if is_user else None,
        target_type=f"{app_label}.{model}",
        target_id=entry.object_id or "",
        metadata=metadata,
    )


def log_entry_saved(sender, instance: LogEntry, created: bool, raw: bool = False, **kwargs):
    if created and not raw and not _bulk_deletion.get():
        record_admin_action(instance)


@functools.wraps(delete_selected)
def audited_delete_selected(modeladmin, request, queryset):
    """Django's delete_selected; its LogEntry rows are bulk-created, which sends no signal."""
    with transaction.atomic():
        newest = LogEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0
        token = _bulk_deletion.set(True)
        try:
            response = delete_selected(modeladmin, request, queryset)
        finally:
            _bulk_deletion.reset(token)
        entries = LogEntry.objects.filter(
            id__gt=newest, user_id=request.user.pk, action_flag=DELETION
        ).select_related("content_type")
        for entry in entries.order_by("id"):
            record_admin_action(entry)
    return response
