"""Preferences per category, and one-click unsubscribe."""

import logging

from django.db import transaction

from audit_app.services import audit_record
from auth_app.models import User
from sv_sdk.errors import ValidationFailed

from ..models import (
    ESSENTIAL_CATEGORIES,
    Category,
    EmailPreference,
    EmailSend,
)
from ..selectors import unsubscribe_subject

logger = logging.getLogger(__name__)

Status = EmailSend.Status


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
                actor=actor,
                user=user,
                target=preference,
                metadata={"category": category, "source": source},
            )
    return preference


def email_unsubscribe(*, token: str) -> tuple[User, str]:
    """Honour a one-click unsubscribe token; raise UnsubscribeTokenInvalid if forged or stale."""
    user, category = unsubscribe_subject(token=token)
    preference_set(user=user, category=category, subscribed=False, actor=user, source="link")
    return user, category
