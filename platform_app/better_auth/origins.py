"""better-auth's CSRF defence: a trusted Origin on cookie-bearing writes, and safe redirects."""

from urllib.parse import urlsplit

from rest_framework.permissions import SAFE_METHODS

from sv_sdk.net import origin_trusted

from .errors import BetterAuthError


def origin_check(request) -> None:
    """Refuse a write that carries cookies unless its Origin (or Referer) is trusted.

    There is no CSRF token in this protocol: a browser always names the page's origin
    on a cross-site write, so a request that rides on a cookie must come from one of
    SV_TRUSTED_ORIGINS. A request without cookies (bearer only) cannot be forged by
    another site and is not checked.
    """
    if request.method in SAFE_METHODS or not request.COOKIES:
        return
    origin = request.headers.get("Origin") or request.headers.get("Referer")
    if not origin or origin == "null":
        raise BetterAuthError(403, "MISSING_OR_NULL_ORIGIN", "Missing or null Origin")
    if not origin_trusted(origin):
        raise BetterAuthError(403, "INVALID_ORIGIN", "Invalid origin")


# better-auth's answer to an unsafe URL, by the field that held it; every callback field
# (callbackURL, errorCallbackURL, newUserCallbackURL) answers as callbackURL does.
_REDIRECT_ERRORS = {
    "callbackURL": ("INVALID_CALLBACK_URL", "Invalid callbackURL"),
    "redirectTo": ("INVALID_REDIRECT_URL", "Invalid redirectURL"),
}


def redirect_check(url: str | None, field: str = "callbackURL") -> None:
    """Refuse a callbackURL or redirectTo that is neither relative nor at a trusted origin."""
    if url is None or url == "" or redirect_allowed(url):
        return
    code, message = _REDIRECT_ERRORS.get(field, _REDIRECT_ERRORS["callbackURL"])
    raise BetterAuthError(403, code, message)


def redirect_allowed(url: str) -> bool:
    # A path of this site ("/done"), not a scheme-relative "//evil.example" or "/\evil".
    if url.startswith("/") and not url.startswith(("//", "/\\")):
        return not urlsplit(url).netloc
    return origin_trusted(url)


def without_callback(request, field: str) -> dict:
    """The request's body without `field` (a callbackURL or redirectTo), which must be safe."""
    data = dict(request.data) if isinstance(request.data, dict) else {}
    redirect_check(data.pop(field, None), field)
    return data
