"""better-auth's session cookie and bearer token: `<token>.<signature>` under SV_BETTER_AUTH_SECRET.

The signature is the base64 HMAC-SHA256 of the token, as better-auth writes it, so a
team that keeps its BETTER_AUTH_SECRET keeps its users' cookies valid.
"""

import base64
import hashlib
import hmac
from urllib.parse import quote, unquote

from django.conf import settings

from sv_sdk.net import cookie_set

COOKIE_NAME = "better-auth.session_token"
SECURE_COOKIE_NAME = f"__Secure-{COOKIE_NAME}"
# The two-factor plugin's cookie: the pending sign-in between the password and the code.
TWO_FACTOR_COOKIE_NAME = "better-auth.two_factor"


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


def cookie_token(request, name: str = COOKIE_NAME) -> tuple[bool, str | None]:
    """(whether the cookie `name` came, in either form, and its token if the signature holds)."""
    for candidate in (f"__Secure-{name}", name):
        value = request.COOKIES.get(candidate)
        if value:
            return True, token_unsign(unquote(value))
    return False, None


def _cookie_name(request, name: str = COOKIE_NAME) -> str:
    secure = request.is_secure() or settings.SV_SESSION_COOKIE_SECURE
    return f"__Secure-{name}" if secure else name


def _cookie_write(request, response, name: str, value: str, max_age: int) -> None:
    name = _cookie_name(request, name)
    cookie_set(response, name, value, max_age=max_age, secure=name.startswith("__Secure-"))


def session_cookie_set(request, response, token: str) -> None:
    """Set the session cookie and hand bearer clients the same value in `set-auth-token`."""
    signed = token_sign(token)
    _cookie_write(request, response, COOKIE_NAME, quote(signed, safe=""), settings.SV_SESSION_TTL)
    response["set-auth-token"] = signed
    # As better-auth: said even to same-origin callers (CORS repeats it for trusted origins).
    response["Access-Control-Expose-Headers"] = "set-auth-token"


def session_cookie_clear(request, response) -> None:
    _cookie_write(request, response, COOKIE_NAME, "", 0)


def two_factor_cookie_set(request, response, mfa_token: str) -> None:
    """Keep a sign-in's mfa_token in the two-factor cookie, signed like the session's, for as
    long as the token lives (SV_MFA_TOKEN_TTL)."""
    signed = quote(token_sign(mfa_token), safe="")
    _cookie_write(request, response, TWO_FACTOR_COOKIE_NAME, signed, settings.SV_MFA_TOKEN_TTL)


def two_factor_cookie_clear(request, response) -> None:
    _cookie_write(request, response, TWO_FACTOR_COOKIE_NAME, "", 0)
