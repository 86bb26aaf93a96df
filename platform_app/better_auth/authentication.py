"""Who is calling /api/auth: the better-auth session cookie, or a bearer token (signed or raw)."""

from rest_framework import authentication, exceptions

from auth_app.authentication import SessionTokenAuthentication

from .cookies import bearer_token, cookie_token


class BetterAuthAuthentication(SessionTokenAuthentication):
    """sv_sdk's session lookup (one query, sliding expiry, the enrolment gate) for better-auth's
    credentials. The Origin check of cookie-bearing writes runs before, in BetterAuthApi."""

    def credentials(self, request) -> tuple[str, bool] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        scheme, _, value = header.partition(" ")
        if header and scheme.lower() == self.keyword.lower():
            token = bearer_token(value.strip())
            if not token:
                raise exceptions.AuthenticationFailed("The bearer token is invalid.")
            return token, False
        came, token = cookie_token(request)
        if not came:
            return None
        if token is None:
            raise exceptions.AuthenticationFailed("The session cookie's signature is invalid.")
        return token, True

    def enforce_csrf(self, request) -> None:
        # better-auth's clients send no CSRF token; origins.origin_check guards instead.
        return None
