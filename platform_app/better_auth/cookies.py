"""better-auth's session cookie and bearer token: `<token>.<signature>` under SV_BETTER_AUTH_SECRET.

The signature is the base64 HMAC-SHA256 of the token, as better-auth writes it, so a
team that keeps its BETTER_AUTH_SECRET keeps its users' cookies valid.
"""

import base64
import hashlib
import hmac
from urllib.parse import quote, unquote

from django.conf import settings

COOKIE_NAME = "better-auth.session_token"
SECURE_COOKIE_NAME = f"__Secure-{COOKIE_NAME}"


def token_sign(token: str) -> str:
    """`token.signature`: the cookie's value (unquoted) and the `set-auth-token` header."""
    digest = hmac.new(
        settings.SV_BETTER_AUTH_SECRET.encode(), token.encode(), hashlib.sha256
    ).digest()
    return f"{token}.{base64.b64encode(digest).decode()}"


def token_unsign(value: str) -> str | None:
    """The token of a signed value, or None when the signature is not ours."""
    token, dot, _signature = value.rpartition(".")
    if not dot or not token:
        return None
    return token if hmac.compare_digest(token_sign(token), value) else None


def bearer_token(value: str) -> str | None:
    """The session token of an `Authorization: Bearer` value, signed or raw.

    sv_sdk's and better-auth's tokens hold no dot, so a value with one is a signed
    one and must verify.
    """
    return token_unsign(value) if "." in value else value


def cookie_token(request) -> tuple[bool, str | None]:
    """(whether a session cookie came, its token if the signature holds)."""
    for name in (SECURE_COOKIE_NAME, COOKIE_NAME):
        value = request.COOKIES.get(name)
        if value:
            return True, token_unsign(unquote(value))
    return False, None


def _cookie_name(request) -> str:
    secure = request.is_secure() or settings.SV_SESSION_COOKIE_SECURE
    return SECURE_COOKIE_NAME if secure else COOKIE_NAME


def session_cookie_set(request, response, token: str) -> None:
    """Set the session cookie and hand bearer clients the same value in `set-auth-token`."""
    name = _cookie_name(request)
    signed = token_sign(token)
    response.set_cookie(
        name,
        quote(signed, safe=""),
        max_age=settings.SV_SESSION_TTL,
        path="/",
        secure=name == SECURE_COOKIE_NAME,
        httponly=True,
        samesite="Lax",
    )
    response["set-auth-token"] = signed
    # As better-auth: said even to same-origin callers (CORS repeats it for trusted origins).
    response["Access-Control-Expose-Headers"] = "set-auth-token"


def session_cookie_clear(request, response) -> None:
    name = _cookie_name(request)
    response.set_cookie(
        name,
        "",
        max_age=0,
        path="/",
        secure=name == SECURE_COOKIE_NAME,
        httponly=True,
        samesite="Lax",
    )
