"""Reads from the identity schema."""

from django.utils import timezone

from .models import Session, User
from .tokens import token_hash


def session_get_by_token(*, token: str) -> Session | None:
    """The live session for `token`, with its user, in one query; None if unknown or expired."""
    if not token or len(token) > 200:
        return None
    # The permission cache rides along (a reverse one-to-one, named by string so
    # this app imports nothing of permissions_app): checks then cost no query.
    return (
        Session.objects.select_related("user", "user__permission_cache")
        .filter(token_hash=token_hash(token), expires_at__gt=timezone.now())
        .first()
    )


def user_get_by_email(*, email: str) -> User | None:
    return User.objects.with_email(email).first()


def user_can_sign_in(user: User) -> bool:
    """Active, and not banned right now."""
    if not user.is_active:
        return False
    return user.banned_until is None or user.banned_until <= timezone.now()
