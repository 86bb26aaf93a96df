"""Identity endpoints that run cross-app flows: sign-up, verification, password reset and change."""

from drf_spectacular.utils import extend_schema, extend_schema_view
from procrastinate.tasks import Task
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from auth_app.addresses import email_key, email_normalize
from auth_app.api.serializers import (
    SignedInOutputSerializer,
    UserNameField,
    UserOutputSerializer,
)
from auth_app.api.views import PASSWORD, PublicApi, signed_in_response, user_agent
from auth_app.errors import (
    EmailTaken,
    InvalidPassword,
    RateLimited,
    ReauthenticationRequired,
    TokenInvalid,
)
from auth_app.mfa import reauthentication_check
from auth_app.ratelimit import rate_limit_hit
from platform_app import flows, tasks
from sv_sdk.api.schema import PASSWORD_RULES, UNSTATED_RULES
from sv_sdk.api.serializers import StrictSerializer, problems
from sv_sdk.errors import ValidationFailed
from sv_sdk.net import client_ip


class SignUpApi(PublicApi):
    class InputSerializer(StrictSerializer):
        email = serializers.EmailField(max_length=254)
        password = serializers.CharField(**PASSWORD)
        name = UserNameField(default="")

    @extend_schema(
        operation_id="auth_sign_up",
        description=PASSWORD_RULES,
        extensions={UNSTATED_RULES: ["password"]},
        request=InputSerializer,
        responses={201: SignedInOutputSerializer, **problems(400, EmailTaken, RateLimited)},
    )
    def post(self, request):
        rate_limit_hit(scope="sign_up", subject=client_ip(request))
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user, session, token = flows.user_sign_up(
            **data.validated_data, ip_address=client_ip(request), user_agent=user_agent(request)
        )
        return signed_in_response(request, user, session, token, status.HTTP_201_CREATED)


class TokenInputSerializer(StrictSerializer):
    token = serializers.CharField(max_length=200)


class EmailInputSerializer(StrictSerializer):
    email = serializers.EmailField(max_length=254)

    def validate_email(self, value: str) -> str:
        # An address with no normal form (say, an invalid IDNA domain) can belong to nobody.
        try:
            return email_normalize(value)
        except ValidationFailed as exc:
            raise serializers.ValidationError(exc.errors["email"]) from None


class AcceptedOutputSerializer(serializers.Serializer):
    detail = serializers.CharField()


class VerifyEmailApi(PublicApi):
    @extend_schema(
        operation_id="auth_verify_email",
        description="The token must be one sent in a verification email, unused and unexpired:"
        " 400 `token_invalid` otherwise.",
        extensions={UNSTATED_RULES: ["token_invalid"]},
        request=TokenInputSerializer,
        responses={200: UserOutputSerializer, **problems(TokenInvalid, RateLimited)},
    )
    def post(self, request):
        rate_limit_hit(scope="verify_email", subject=client_ip(request))
        data = TokenInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = flows.email_verify(token=data.validated_data["token"])
        return Response(UserOutputSerializer(user).data)


def email_request_accept(request, *, scope: str, task: Task, data) -> None:
    """Rate limit per IP, check `data` ({email}), rate limit per (address, IP), defer `task`.

    What every "mail me a link" request does, here and in the better-auth API.
    """
    ip_address = client_ip(request)
    rate_limit_hit(scope=scope, subject=ip_address)
    serializer = EmailInputSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    email = serializer.validated_data["email"]
    # Per address *and* IP: requests for bob from elsewhere never use up bob's own.
    rate_limit_hit(scope=scope, subject=f"{ip_address}:{email_key(email)}")
    task.defer(email=email)


class EmailRequestApi(PublicApi):
    """Take an email, rate limited per IP and per (address, IP), and answer 202 whatever it is.

    Subclasses name their rate-limit `scope` and the `task` that does the work for the
    address. The work is deferred, so the request costs the same for a known and an
    unknown address; the task's flow applies the daily cap per recipient.
    """

    scope: str
    task: Task

    @extend_schema(
        request=EmailInputSerializer,
        responses={202: AcceptedOutputSerializer, **problems(400, RateLimited)},
    )
    def post(self, request):
        email_request_accept(request, scope=self.scope, task=self.task, data=request.data)
        # The same answer whether or not the address is known: no enumeration.
        return Response(
            {"detail": "If the address belongs to an account, an email is on its way."},
            status=status.HTTP_202_ACCEPTED,
        )


@extend_schema_view(post=extend_schema(operation_id="auth_send_verification_email"))
class SendVerificationEmailApi(EmailRequestApi):
    scope = "send_verification"
    task = tasks.verification_email_resend


@extend_schema_view(post=extend_schema(operation_id="auth_forgot_password"))
class ForgotPasswordApi(EmailRequestApi):
    scope = "forgot_password"
    task = tasks.password_reset_request


class ResetPasswordApi(PublicApi):
    class InputSerializer(StrictSerializer):
        token = serializers.CharField(max_length=200)
        new_password = serializers.CharField(**PASSWORD)

    @extend_schema(
        operation_id="auth_reset_password",
        description="The token must be one sent in a reset email, unused and unexpired: 400"
        " `token_invalid` otherwise. " + PASSWORD_RULES,
        extensions={UNSTATED_RULES: ["token_invalid", "new_password"]},
        request=InputSerializer,
        responses={200: UserOutputSerializer, **problems(TokenInvalid, RateLimited)},
    )
    def post(self, request):
        rate_limit_hit(scope="reset_password", subject=client_ip(request))
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = flows.password_reset(**data.validated_data)
        return Response(UserOutputSerializer(user).data)


class ChangePasswordApi(APIView):
    class InputSerializer(StrictSerializer):
        current_password = serializers.CharField(**PASSWORD)
        new_password = serializers.CharField(**PASSWORD)
        revoke_other_sessions = serializers.BooleanField(default=False)

    @extend_schema(
        operation_id="auth_change_password",
        description="`current_password` must be the password: 400 `invalid_password` otherwise. "
        + PASSWORD_RULES,
        extensions={UNSTATED_RULES: ["invalid_password", "new_password"]},
        request=InputSerializer,
        responses={
            204: None,
            **problems(InvalidPassword, 401, ReauthenticationRequired, RateLimited),
        },
    )
    def post(self, request):
        rate_limit_hit(scope="change_password", subject=request.user.pk)
        reauthentication_check(session=request.auth)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        flows.password_change(
            user=request.user,
            current_session=request.auth,
            ip_address=client_ip(request),
            user_agent=user_agent(request),
            **data.validated_data,
        )
        return Response(status=status.HTTP_204_NO_CONTENT)
