"""Identity endpoints that run cross-app flows: sign-up, verification, password reset and change."""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from auth_app.api.serializers import SignedInOutputSerializer, UserOutputSerializer
from auth_app.api.views import PASSWORD, PublicApi, client_ip, signed_in_response, user_agent
from auth_app.mfa import reauthentication_check
from auth_app.ratelimit import rate_limit_hit
from platform_app import flows
from sv_sdk.api.serializers import StrictSerializer, problems


class SignUpApi(PublicApi):
    class InputSerializer(StrictSerializer):
        email = serializers.EmailField(max_length=254)
        password = serializers.CharField(**PASSWORD)
        name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")

    @extend_schema(
        operation_id="auth_sign_up",
        request=InputSerializer,
        responses={201: SignedInOutputSerializer, **problems(400, 409, 413, 415, 429)},
    )
    def post(self, request):
        rate_limit_hit(scope="sign_up", subject=client_ip(request))
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user, session, token = flows.user_sign_up(
            **data.validated_data, ip_address=client_ip(request), user_agent=user_agent(request)
        )
        return signed_in_response(user, session, token, status.HTTP_201_CREATED)


class TokenInputSerializer(StrictSerializer):
    token = serializers.CharField(max_length=200)


class EmailInputSerializer(StrictSerializer):
    email = serializers.EmailField(max_length=254)


class AcceptedOutputSerializer(serializers.Serializer):
    detail = serializers.CharField()


class VerifyEmailApi(PublicApi):
    @extend_schema(
        operation_id="auth_verify_email",
        request=TokenInputSerializer,
        responses={200: UserOutputSerializer, **problems(400, 429)},
    )
    def post(self, request):
        rate_limit_hit(scope="verify_email", subject=client_ip(request))
        data = TokenInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = flows.email_verify(token=data.validated_data["token"])
        return Response(UserOutputSerializer(user).data)


class EmailRequestApi(PublicApi):
    """Take an email, rate limited per IP and per address, and answer 202 whatever it is.

    Subclasses name their rate-limit `scope` and the `flow` to run for the address.
    """

    scope: str
    flow: staticmethod

    @extend_schema(
        request=EmailInputSerializer,
        responses={202: AcceptedOutputSerializer, **problems(400, 429)},
    )
    def post(self, request):
        rate_limit_hit(scope=self.scope, subject=client_ip(request))
        data = EmailInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        email = data.validated_data["email"]
        rate_limit_hit(scope=self.scope, subject=email.lower())
        self.flow(email=email)
        # The same answer whether or not the address is known: no enumeration.
        return Response(
            {"detail": "If the address belongs to an account, an email is on its way."},
            status=status.HTTP_202_ACCEPTED,
        )


@extend_schema_view(post=extend_schema(operation_id="auth_send_verification_email"))
class SendVerificationEmailApi(EmailRequestApi):
    scope = "send_verification"
    flow = staticmethod(flows.verification_email_resend)


@extend_schema_view(post=extend_schema(operation_id="auth_forgot_password"))
class ForgotPasswordApi(EmailRequestApi):
    scope = "forgot_password"
    flow = staticmethod(flows.password_reset_request)


class ResetPasswordApi(PublicApi):
    class InputSerializer(StrictSerializer):
        token = serializers.CharField(max_length=200)
        new_password = serializers.CharField(**PASSWORD)

    @extend_schema(
        operation_id="auth_reset_password",
        request=InputSerializer,
        responses={200: UserOutputSerializer, **problems(400, 429)},
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
        request=InputSerializer,
        responses={204: None, **problems(400, 401, 403, 429)},
    )
    def post(self, request):
        rate_limit_hit(scope="change_password", subject=request.user.pk)
        reauthentication_check(session=request.auth)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        flows.password_change(
            user=request.user, current_session=request.auth, **data.validated_data
        )
        return Response(status=status.HTTP_204_NO_CONTENT)
