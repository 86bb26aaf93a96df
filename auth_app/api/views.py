"""The identity API under /api/v1/auth/: one class per operation."""

from django.conf import settings
from django.middleware.csrf import get_token, rotate_token
from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from audit_app.context import clean_user_agent
from auth_app import services, signin
from auth_app.errors import AccountDisabled, InvalidCredentials, RateLimited
from auth_app.models import Session
from auth_app.ratelimit import rate_limit_hit
from sv_sdk.api.pagination import NewestFirstCursorPagination
from sv_sdk.api.schema import UNSTATED_RULES
from sv_sdk.api.serializers import StrictSerializer, problems
from sv_sdk.net import client_ip, cookie_set

from .serializers import (
    IMAGE_RULE,
    CsrfOutputSerializer,
    MeOutputSerializer,
    MfaRequiredOutputSerializer,
    RevokedOutputSerializer,
    SessionInfoOutputSerializer,
    SessionOutputSerializer,
    SignedInOutputSerializer,
    UserNameField,
)

PASSWORD = {"max_length": 1024, "trim_whitespace": False, "style": {"input_type": "password"}}


def user_agent(request) -> str:
    return clean_user_agent(request.META.get("HTTP_USER_AGENT"))


def set_session_cookie(response: Response, token: str, session: Session) -> None:
    cookie_set(
        response,
        settings.SV_SESSION_COOKIE_NAME,
        token,
        expires=session.expires_at,
        secure=settings.SV_SESSION_COOKIE_SECURE,
    )


def signed_in_response(request, user, session, token, status_code) -> Response:
    """The new session: its token in the body and the session cookie, and a CSRF cookie.

    A fresh CSRF token at each sign-in, as Django's login() does, so a token
    planted before it is worthless after; the middleware sets the `csrftoken`
    cookie, which a cookie-based front end echoes in `X-CSRFToken`.
    """
    rotate_token(request._request)
    body = SignedInOutputSerializer(
        {"user": user, "session": {"token": token, "expires_at": session.expires_at}}
    ).data
    response = Response(body, status=status_code)
    set_session_cookie(response, token, session)
    return response


SIGN_IN_RESPONSE = PolymorphicProxySerializer(
    component_name="SignInResult",
    serializers=[SignedInOutputSerializer, MfaRequiredOutputSerializer],
    resource_type_field_name=None,
)


def sign_in_step_response(request, step) -> Response:
    """A session, or (for a user with a second factor) what the second step needs."""
    if step.session is None:
        body = MfaRequiredOutputSerializer(
            {
                "mfa_required": True,
                "mfa_token": step.mfa_token,
                "expires_at": step.mfa_expires_at,
                "methods": step.methods,
            }
        ).data
        return Response(body, status=status.HTTP_200_OK)
    return signed_in_response(request, step.user, step.session, step.token, status.HTTP_200_OK)


def session_page(view, sessions) -> Response:
    """One cursor page of `sessions`, newest first, the caller's own marked `current`."""
    paginator = view.pagination_class()
    page = paginator.paginate_queryset(sessions, view.request, view=view)
    context = {"current_session_id": view.request.auth.pk}
    return paginator.get_paginated_response(
        SessionOutputSerializer(page, many=True, context=context).data
    )


class PublicApi(APIView):
    """An endpoint for anyone: a stale cookie or token must not turn it into a 401."""

    authentication_classes = []
    permission_classes = [AllowAny]


class SignInApi(PublicApi):
    class InputSerializer(StrictSerializer):
        email = serializers.CharField(max_length=254)
        password = serializers.CharField(**PASSWORD)

    @extend_schema(
        operation_id="auth_sign_in",
        request=InputSerializer,
        responses={
            200: SIGN_IN_RESPONSE,
            **problems(400, InvalidCredentials, AccountDisabled, RateLimited),
        },
    )
    def post(self, request):
        rate_limit_hit(scope="sign_in", subject=client_ip(request))
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        step = signin.sign_in(
            **data.validated_data, ip_address=client_ip(request), user_agent=user_agent(request)
        )
        return sign_in_step_response(request, step)


class CsrfApi(PublicApi):
    """The CSRF token for cookie-authenticated browsers, in the body and the `csrftoken` cookie."""

    @extend_schema(
        operation_id="auth_csrf",
        responses={200: CsrfOutputSerializer},
        description="Sets the `csrftoken` cookie too. Bearer clients need no CSRF token.",
    )
    def get(self, request):
        return Response(CsrfOutputSerializer({"csrf_token": get_token(request._request)}).data)


class SignOutApi(APIView):
    mfa_enrollment = True  # reachable by a session limited to enrolment

    @extend_schema(
        operation_id="auth_sign_out", request=None, responses={204: None, **problems(401)}
    )
    def post(self, request):
        services.session_revoke(session=request.auth, actor=request.user, reason="sign_out")
        response = Response(status=status.HTTP_204_NO_CONTENT)
        response.delete_cookie(settings.SV_SESSION_COOKIE_NAME, path="/", samesite="Lax")
        return response


class SessionApi(APIView):
    mfa_enrollment = True

    @extend_schema(
        operation_id="auth_session", responses={200: SessionInfoOutputSerializer, **problems(401)}
    )
    def get(self, request):
        body = SessionInfoOutputSerializer(
            {"user": request.user, "session": request.auth},
            context={"current_session_id": request.auth.pk},
        ).data
        return Response(body)


class MeApi(APIView):
    class InputSerializer(StrictSerializer):
        name = UserNameField()
        image = serializers.URLField(max_length=2000, required=False, allow_blank=True)

    @extend_schema(operation_id="auth_me", responses={200: MeOutputSerializer, **problems(401)})
    def get(self, request):
        return Response(MeOutputSerializer(request.user).data)

    @extend_schema(
        operation_id="auth_me_update",
        description=IMAGE_RULE,
        extensions={UNSTATED_RULES: ["image"]},
        request=InputSerializer,
        responses={200: MeOutputSerializer, **problems(400, 401)},
    )
    def patch(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_profile_update(
            user=request.user, actor=request.user, **data.validated_data
        )
        return Response(MeOutputSerializer(user).data)


class SessionListApi(APIView):
    pagination_class = NewestFirstCursorPagination

    @extend_schema(
        operation_id="auth_sessions",
        responses={200: SessionOutputSerializer(many=True), **problems(400, 401)},
    )
    def get(self, request):
        return session_page(self, Session.objects.filter(user=request.user))


class SessionRevokeApi(APIView):
    @extend_schema(operation_id="auth_session_revoke", responses={204: None, **problems(401, 404)})
    def delete(self, request, session_id):
        session = Session.objects.filter(user=request.user, pk=session_id).first()
        if session is None:
            from sv_sdk.errors import NotFound

            raise NotFound("No such session of yours.")
        services.session_revoke(session=session, actor=request.user, reason="user")
        return Response(status=status.HTTP_204_NO_CONTENT)


class SessionRevokeOthersApi(APIView):
    @extend_schema(
        operation_id="auth_sessions_revoke_others",
        request=None,
        responses={200: RevokedOutputSerializer, **problems(401)},
    )
    def post(self, request):
        count = services.sessions_revoke_for_user(
            user=request.user, actor=request.user, reason="revoke_others", keep=request.auth
        )
        return Response({"revoked": count})
