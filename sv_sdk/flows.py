"""Cross-domain work, each flow one transaction: all of it happens or none of it does."""

from datetime import timedelta

from django.conf import settings
from django.db import transaction

from audit_app.services import audit_record
from auth_app.models import User
from auth_app.services import EMAIL_VERIFICATION, user_create, verification_create
from email_app.models import Category
from email_app.services import email_queue
from permissions_app.catalogue import DEFAULT_USER_ROLE, SUPERUSER_ROLE
from permissions_app.models import Role
from permissions_app.services import role_grant


def verification_url(token: str) -> str:
    # Built from the configured public URL, never from a request's Host header.
    return f"{settings.SV_PUBLIC_URL}/verify-email?token={token}"


def user_onboard(
    *,
    email: str,
    password: str | None = None,
    name: str = "",
    is_staff: bool = False,
    is_superuser: bool = False,
    actor: User | None = None,
    validate_password: bool = False,
) -> User:
    """Create a user with their default role, permission cache, audit row and verification email.

    Used by sign-up, the admin, createsuperuser and create_user. Raises
    EmailTaken when the email exists in any letter case; then nothing is written.
    """
    with transaction.atomic(durable=True):
        user = user_create(
            email=email,
            password=password,
            name=name,
            is_staff=is_staff,
            is_superuser=is_superuser,
            validate_password=validate_password,
        )
        role = Role.objects.get(name=SUPERUSER_ROLE if is_superuser else DEFAULT_USER_ROLE)
        role_grant(user=user, role=role, granted_by=actor)
        audit_record(
            event_type="user.created",
            actor_id=actor.pk if actor else None,
            user_id=user.pk,
            target_type="user",
            target_id=user.pk,
            metadata={"is_staff": user.is_staff, "is_superuser": user.is_superuser},
        )
        ttl = timedelta(seconds=settings.SV_EMAIL_VERIFICATION_TTL)
        _verification, token = verification_create(user=user, purpose=EMAIL_VERIFICATION, ttl=ttl)
        email_queue(
            to_email=user.email,
            category=Category.ACCOUNT,
            template_key="verify-email",
            context={
                "user_name": user.get_short_name(),
                "verify_url": verification_url(token),
                "expires_hours": int(ttl.total_seconds() // 3600),
            },
            user=user,
            secret_keys=("verify_url",),
        )
    return user
