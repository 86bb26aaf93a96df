"""DRF authentication by session token: a Bearer header, or the session cookie."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.authentication import CSRFCheck

from .errors import MfaEnrollmentRequired
from .models import Session
from .selectors import session_get_by_token, user_can_sign_in


class SessionTokenAuthentication(authentication.BaseAuthentication):
    """One query (the session joined to its user); a write at most once a day of use."""

    keyword = "Bearer"

    def authenticate(self, request):
        found = self.credentials(request)
        if found is None:
            return None
        token, from_cookie = found
        session = session_get_by_token(token=token)
        if session is None or not user_can_sign_in(session.user):
            raise exceptions.AuthenticationFailed("The session is invalid or has ended.")
        if from_cookie:
            self.enforce_csrf(request)
        _enrolment_gate(request, session)
        _slide(session)
        return session.user, session

    def credentials(self, request) -> tuple[str, bool] | None:
        """(token, whether it came from the cookie), or None when the request carries none."""
        header = authentication.get_authorization_header(request).decode("latin-1")
        if header:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != self.keyword.lower():
                return None
            token = token.strip()
            if not token:
                raise exceptions.AuthenticationFailed("Empty bearer token.")
            return token, False
        token = request.COOKIES.get(settings.SV_SESSION_COOKIE_NAME)
        return (token, True) if token else None

    def authenticate_header(self, request):
        return self.keyword

    def enforce_csrf(self, request):
        # A cookie rides along on cross-site requests; a Bearer header does not.
        check = CSRFCheck(lambda req: None)
        check.process_request(request)
        reason = check.process_view(request, None, (), {})
        if reason:
            raise exceptions.PermissionDenied(f"CSRF failed: {reason}")


def _enrolment_gate(request, session: Session) -> None:
    """A session that must enrol a second factor reaches only the views marked
    `mfa_enrollment = True` (enrolment, the session itself, sign-out)."""
    if session.mfa_enroll_by is None or session.mfa_enroll_by > timezone.now():
        return
    view = (getattr(request, "parser_context", None) or {}).get("view")
    if not getattr(view, "mfa_enrollment", False):
        raise MfaEnrollmentRequired()


def _slide(session: Session) -> None:
    """Extend a session in use, at most once per SV_SESSION_UPDATE_AGE."""
    now = timezone.now()
    if now - session.last_seen_at < timedelta(seconds=settings.SV_SESSION_UPDATE_AGE):
        return
    cap = session.created_at + timedelta(seconds=settings.SV_SESSION_MAX_AGE)
    session.expires_at = min(now + timedelta(seconds=settings.SV_SESSION_TTL), cap)
    session.last_seen_at = now
    Session.objects.filter(pk=session.pk).update(
        expires_at=session.expires_at, last_seen_at=now, updated_at=now
    )


class SessionTokenScheme(OpenApiAuthenticationExtension):
    """Describe the session token in the OpenAPI document: bearer header or cookie."""

    target_class = SessionTokenAuthentication
    name = ["bearerAuth", "cookieAuth"]

    def get_security_requirement(self, auto_schema):
        # Alternatives (either one), not one requirement naming both (both at once).
        return [{name: []} for name in self.name]

    def get_security_definition(self, auto_schema):
        return [
            {
                "type": "http",
                "scheme": "bearer",
                "description": "The session token from sign-in or sign-up.",
            },
            {"type": "apiKey", "in": "cookie", "name": settings.SV_SESSION_COOKIE_NAME},
        ]
