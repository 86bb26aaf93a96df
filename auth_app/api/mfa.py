"""The second-factor API under /api/v1/auth/mfa/: one class per path."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from auth_app import mfa, passkeys, signin
from auth_app.errors import (
    AccountDisabled,
    InvalidCode,
    InvalidPassword,
    MfaAlreadyEnabled,
    MfaNotEnabled,
    MfaNotPending,
    PasskeyCloned,
    PasskeyInvalid,
    RateLimited,
    ReauthenticationRequired,
    TokenInvalid,
)
from auth_app.models import Passkey, TwoFactor
from auth_app.ratelimit import rate_limit_hit
from sv_sdk.api.pagination import NewestFirstCursorPagination
from sv_sdk.api.schema import UNSTATED_RULES
from sv_sdk.api.serializers import StrictSerializer, problems
from sv_sdk.errors import NotFound
from sv_sdk.net import client_ip

from .serializers import (
    MfaStatusOutputSerializer,
    PasskeyOutputSerializer,
    PasskeyRegisteredOutputSerializer,
    ReauthenticatedOutputSerializer,
    RecoveryCodesOutputSerializer,
    SignedInOutputSerializer,
    TotpEnrolmentOutputSerializer,
)
from .views import PASSWORD, PublicApi, signed_in_response, user_agent

METHODS = ["totp", "recovery_code", "passkey"]
# WebAuthn options and responses are the browser's JSON (see docs/mfa.md): passed through.
WEBAUTHN_JSON = {"type": "object", "additionalProperties": True}
# What only the server can judge: the method's own input (a code, or a passkey's assertion),
# whether a code or an assertion is right, and whether an mfa_token is still good.
FACTOR_RULES = ["code", "credential", "invalid_code", "passkey_invalid", "passkey_cloned"]
FACTOR_DESCRIPTION = (
    "`totp` and `recovery_code` need `code`, `passkey` needs `credential` (the assertion): "
    "400 naming the missing field otherwise. A wrong code is 400 `invalid_code`, an assertion "
    "the server refuses 400 `passkey_invalid` (`passkey_cloned` when its counter went back)."
)
ASSERTION_DESCRIPTION = (
    "`credential` is the browser's WebAuthn JSON: 400 `passkey_invalid` when the server "
    "refuses it (`passkey_cloned` when its counter went back)."
)


class FactorInputSerializer(StrictSerializer):
    """A second factor: a TOTP or recovery code, or a passkey assertion."""

    method = serializers.ChoiceField(choices=METHODS)
    code = serializers.CharField(max_length=64, required=False, default="")
    credential = serializers.DictField(required=False, default=dict)

    def validate(self, attrs):
        if attrs["method"] == "passkey" and not attrs["credential"]:
            raise serializers.ValidationError({"credential": ["A passkey needs its assertion."]})
        if attrs["method"] != "passkey" and not attrs["code"]:
            raise serializers.ValidationError({"code": ["This method needs a code."]})
        return attrs


def _factor(data) -> dict:
    return {
        "method": data["method"],
        "code": data["code"],
        "credential": data["credential"],
    }


class MfaStatusApi(APIView):
    mfa_enrollment = True

    @extend_schema(
        operation_id="auth_mfa_status", responses={200: MfaStatusOutputSerializer, **problems(401)}
    )
    def get(self, request):
        user = request.user
        two_factor = TwoFactor.objects.filter(user=user).first()
        body = {
            "totp_enabled": bool(two_factor and two_factor.confirmed_at),
            "totp_pending": bool(two_factor and not two_factor.confirmed_at),
            "recovery_codes_left": mfa.recovery_codes_left(user),
            "passkeys": Passkey.objects.filter(user=user),
            "methods": mfa.mfa_methods(user),
            "enrollment_required_by": getattr(request.auth, "mfa_enroll_by", None),
        }
        return Response(MfaStatusOutputSerializer(body).data)


class TotpApi(APIView):
    mfa_enrollment = True

    @extend_schema(
        operation_id="auth_mfa_totp_enroll",
        request=None,
        responses={200: TotpEnrolmentOutputSerializer, **problems(401, MfaAlreadyEnabled)},
    )
    def post(self, request):
        enrolment = mfa.totp_enroll_start(user=request.user)
        return Response(TotpEnrolmentOutputSerializer(enrolment).data)

    @extend_schema(
        operation_id="auth_mfa_totp_disable",
        responses={204: None, **problems(401, ReauthenticationRequired, MfaNotEnabled)},
    )
    def delete(self, request):
        mfa.totp_disable(user=request.user, session=request.auth)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TotpConfirmApi(APIView):
    mfa_enrollment = True

    class InputSerializer(StrictSerializer):
        code = serializers.CharField(max_length=16)

    @extend_schema(
        operation_id="auth_mfa_totp_confirm",
        description="A wrong code is 400 `invalid_code`.",
        extensions={UNSTATED_RULES: ["invalid_code"]},
        request=InputSerializer,
        responses={
            200: RecoveryCodesOutputSerializer,
            **problems(400, InvalidCode, 401, MfaNotPending, RateLimited),
        },
    )
    def post(self, request):
        rate_limit_hit(scope="mfa", subject=client_ip(request))
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        codes = mfa.totp_confirm(
            user=request.user,
            code=data.validated_data["code"],
            ip_address=client_ip(request),
            user_agent=user_agent(request),
        )
        return Response({"recovery_codes": codes})


class RecoveryCodesApi(APIView):
    @extend_schema(
        operation_id="auth_mfa_recovery_codes_regenerate",
        request=None,
        responses={
            200: RecoveryCodesOutputSerializer,
            **problems(401, ReauthenticationRequired, MfaNotEnabled),
        },
    )
    def post(self, request):
        codes = mfa.recovery_codes_regenerate(user=request.user, session=request.auth)
        return Response({"recovery_codes": codes})


class PasskeyRegistrationOptionsApi(APIView):
    mfa_enrollment = True

    @extend_schema(
        operation_id="auth_mfa_passkey_registration_options",
        request=None,
        responses={200: WEBAUTHN_JSON, **problems(401)},
    )
    def post(self, request):
        return Response(passkeys.passkey_registration_options(user=request.user))


class PasskeyListApi(APIView):
    mfa_enrollment = True
    pagination_class = NewestFirstCursorPagination

    class InputSerializer(StrictSerializer):
        name = serializers.CharField(max_length=100, required=False, default="Passkey")
        credential = serializers.DictField(help_text="navigator.credentials.create()'s result.")

    @extend_schema(
        operation_id="auth_mfa_passkeys",
        responses={200: PasskeyOutputSerializer(many=True), **problems(400, 401)},
    )
    def get(self, request):
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(
            Passkey.objects.filter(user=request.user), request, view=self
        )
        return paginator.get_paginated_response(PasskeyOutputSerializer(page, many=True).data)

    @extend_schema(
        operation_id="auth_mfa_passkey_register",
        description="`credential` is the browser's WebAuthn JSON: 400 `passkey_invalid` when "
        "the server refuses it.",
        extensions={UNSTATED_RULES: ["passkey_invalid"]},
        request=InputSerializer,
        responses={201: PasskeyRegisteredOutputSerializer, **problems(400, PasskeyInvalid, 401)},
    )
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        passkey, codes = passkeys.passkey_register(
            user=request.user,
            credential=data.validated_data["credential"],
            name=data.validated_data["name"],
        )
        body = PasskeyRegisteredOutputSerializer({**vars(passkey), "recovery_codes": codes}).data
        return Response(body, status=status.HTTP_201_CREATED)


class PasskeyDetailApi(APIView):
    class InputSerializer(StrictSerializer):
        name = serializers.CharField(max_length=100, required=False)

    def _passkey(self, request, passkey_id) -> Passkey:
        passkey = Passkey.objects.filter(user=request.user, pk=passkey_id).first()
        if passkey is None:
            raise NotFound("No such passkey of yours.")
        return passkey

    @extend_schema(
        operation_id="auth_mfa_passkey_rename",
        request=InputSerializer,
        responses={200: PasskeyOutputSerializer, **problems(400, 401, 404)},
    )
    def patch(self, request, passkey_id):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        passkey = self._passkey(request, passkey_id)
        if "name" in data.validated_data:  # a PATCH changes what it names, and nothing else
            passkey = passkeys.passkey_rename(passkey=passkey, name=data.validated_data["name"])
        return Response(PasskeyOutputSerializer(passkey).data)

    @extend_schema(
        operation_id="auth_mfa_passkey_remove",
        responses={204: None, **problems(401, ReauthenticationRequired, 404)},
    )
    def delete(self, request, passkey_id):
        passkeys.passkey_remove(passkey=self._passkey(request, passkey_id), session=request.auth)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MfaTokenInputSerializer(StrictSerializer):
    mfa_token = serializers.CharField(max_length=200)


class MfaPasskeyOptionsApi(PublicApi):
    @extend_schema(
        operation_id="auth_mfa_passkey_options",
        description="An mfa_token unknown, expired or used is 400 `token_invalid`.",
        extensions={UNSTATED_RULES: ["token_invalid"]},
        request=MfaTokenInputSerializer,
        responses={200: WEBAUTHN_JSON, **problems(400, TokenInvalid, RateLimited)},
    )
    def post(self, request):
        rate_limit_hit(scope="mfa", subject=client_ip(request))
        data = MfaTokenInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = signin.mfa_token_user(mfa_token=data.validated_data["mfa_token"])
        return Response(passkeys.passkey_authentication_options(user=user))


class MfaVerifyApi(PublicApi):
    class InputSerializer(FactorInputSerializer):
        mfa_token = serializers.CharField(max_length=200)

    @extend_schema(
        operation_id="auth_mfa_verify",
        description=FACTOR_DESCRIPTION
        + " An mfa_token unknown, expired or used is 400 `token_invalid`.",
        extensions={UNSTATED_RULES: [*FACTOR_RULES, "token_invalid"]},
        request=InputSerializer,
        responses={
            200: SignedInOutputSerializer,
            **problems(400, InvalidCode, PasskeyInvalid, PasskeyCloned, TokenInvalid, RateLimited),
        },
    )
    def post(self, request):
        rate_limit_hit(scope="mfa", subject=client_ip(request))
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user, session, token = signin.sign_in_verify(
            mfa_token=data.validated_data["mfa_token"],
            **_factor(data.validated_data),
            ip_address=client_ip(request),
            user_agent=user_agent(request),
        )
        return signed_in_response(request, user, session, token, status.HTTP_200_OK)


class PasskeySignInOptionsApi(PublicApi):
    @extend_schema(
        operation_id="auth_mfa_passkey_sign_in_options",
        request=None,
        responses={200: WEBAUTHN_JSON, **problems(RateLimited)},
    )
    def post(self, request):
        rate_limit_hit(scope="mfa", subject=client_ip(request))
        return Response(passkeys.passkey_authentication_options(user=None))


class PasskeySignInApi(PublicApi):
    class InputSerializer(StrictSerializer):
        credential = serializers.DictField(help_text="navigator.credentials.get()'s result.")

    @extend_schema(
        operation_id="auth_mfa_passkey_sign_in",
        description=ASSERTION_DESCRIPTION,
        extensions={UNSTATED_RULES: ["passkey_invalid", "passkey_cloned"]},
        request=InputSerializer,
        responses={
            200: SignedInOutputSerializer,
            **problems(400, PasskeyInvalid, PasskeyCloned, AccountDisabled, RateLimited),
        },
    )
    def post(self, request):
        rate_limit_hit(scope="sign_in", subject=client_ip(request))
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user, session, token = signin.passkey_sign_in(
            credential=data.validated_data["credential"],
            ip_address=client_ip(request),
            user_agent=user_agent(request),
        )
        return signed_in_response(request, user, session, token, status.HTTP_200_OK)


class ReauthenticateOptionsApi(APIView):
    @extend_schema(
        operation_id="auth_mfa_reauthenticate_options",
        request=None,
        responses={200: WEBAUTHN_JSON, **problems(401)},
    )
    def post(self, request):
        return Response(passkeys.passkey_authentication_options(user=request.user))


class ReauthenticateApi(APIView):
    class InputSerializer(StrictSerializer):
        password = serializers.CharField(required=False, default="", **PASSWORD)
        method = serializers.ChoiceField(choices=METHODS, required=False, default="")
        code = serializers.CharField(max_length=64, required=False, default="")
        credential = serializers.DictField(required=False, default=dict)

        def validate(self, attrs):
            if bool(attrs["password"]) == bool(attrs["method"]):
                raise serializers.ValidationError(
                    {"non_field_errors": ["Send either `password` or a second-factor `method`."]}
                )
            if attrs["method"]:
                FactorInputSerializer().validate(attrs)
            return attrs

    @extend_schema(
        operation_id="auth_mfa_reauthenticate",
        description="Send either `password` or a second-factor `method`: 400 `non_field_errors` "
        "otherwise. A wrong password is 400 `invalid_password`. " + FACTOR_DESCRIPTION,
        extensions={UNSTATED_RULES: [*FACTOR_RULES, "invalid_password", "non_field_errors"]},
        request=InputSerializer,
        responses={
            200: ReauthenticatedOutputSerializer,
            **problems(
                400, InvalidCode, InvalidPassword, PasskeyInvalid, PasskeyCloned, 401, RateLimited
            ),
        },
    )
    def post(self, request):
        rate_limit_hit(scope="mfa", subject=client_ip(request))
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        session = signin.session_reauthenticate(
            session=request.auth,
            **data.validated_data,
            ip_address=client_ip(request),
            user_agent=user_agent(request),
        )
        return Response(ReauthenticatedOutputSerializer(session).data)
