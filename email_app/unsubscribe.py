"""Signed one-click unsubscribe links (RFC 8058), bound to a user and a category."""

from django.conf import settings
from django.core import signing

from .errors import UnsubscribeTokenInvalid

# A salt of its own, so no other signed value of the project passes as an unsubscribe token.
_SALT = "sv_sdk.email.unsubscribe"


def unsubscribe_token(*, user_id: str, category: str) -> str:
    """A token that stays valid as long as SECRET_KEY does: it is signed, never stored."""
    return signing.dumps([user_id, category], salt=_SALT, compress=False)


def unsubscribe_token_read(token: str) -> tuple[str, str]:
    """Return (user_id, category) from a token; raise UnsubscribeTokenInvalid if forged."""
    try:
        # No max_age: the link in an old email must keep working.
        value = signing.loads(token, salt=_SALT)
    except signing.BadSignature:
        raise UnsubscribeTokenInvalid() from None
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)):
        raise UnsubscribeTokenInvalid()
    return value[0], value[1]


def unsubscribe_url(*, user_id: str, category: str) -> str:
    # Built from the configured public URL, never from a request's Host header. The
    # token is the last path segment, which the log filter redacts (sv_sdk.logs);
    # signing's alphabet (base64url and ":") needs no quoting there.
    token = unsubscribe_token(user_id=user_id, category=category)
    return f"{settings.SV_PUBLIC_URL}/api/v1/email/unsubscribe/{token}"
