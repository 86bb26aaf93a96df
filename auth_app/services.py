"""Writes to the identity schema."""

from datetime import timedelta

from django.contrib.auth import password_validation
from django.contrib.auth.base_user import BaseUserManager
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from sv_sdk.errors import ValidationFailed

from .errors import EmailTaken
from .models import User, Verification
from .tokens import token_generate, token_hash

EMAIL_VERIFICATION = "email-verification"


def user_create(
    *,
    email: str,
    password: str | None = None,
    name: str = "",
    is_staff: bool = False,
    is_superuser: bool = False,
    validate_password: bool = True,
) -> User:
    """Create a user; raise EmailTaken if the email exists in any letter case.

    A missing password gives an unusable one (external-only users).
    """
    email = BaseUserManager.normalize_email((email or "").strip())
    try:
        validate_email(email)
    except ValidationError as exc:
        raise ValidationFailed(errors={"email": list(exc.messages)}) from None
    user = User(
        email=email,
        name=name.strip(),
        is_staff=is_staff or is_superuser,
        is_superuser=is_superuser,
    )
    if password is None:
        user.set_unusable_password()
    else:
        if validate_password:
            try:
                password_validation.validate_password(password, user)
            except ValidationError as exc:
                raise ValidationFailed(errors={"password": list(exc.messages)}) from None
        user.set_password(password)
    try:
        # A savepoint, so a unique violation leaves the caller's transaction usable
        # long enough to turn it into EmailTaken (and roll everything back).
        with transaction.atomic():
            user.save(force_insert=True)
    except IntegrityError as exc:
        if "users_email_lower_uniq" in str(exc):
            raise EmailTaken() from None
        raise
    return user


def verification_create(*, user: User, purpose: str, ttl: timedelta) -> tuple[Verification, str]:
    """Issue a single-use token for `purpose`, replacing any unused one; return (row, token)."""
    identifier = f"{purpose}:{user.pk}"
    token = token_generate()
    with transaction.atomic():
        # A new token makes the previous one of the same purpose useless.
        Verification.objects.filter(identifier=identifier, consumed_at__isnull=True).delete()
        verification = Verification.objects.create(
            identifier=identifier,
            user=user,
            value_hash=token_hash(token),
            expires_at=timezone.now() + ttl,
        )
    return verification, token
