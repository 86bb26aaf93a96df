"""The second-factor API under /api/v1/auth/mfa/: one class per path."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from auth_app import mfa, passkeys, signin
from auth_app.models import Passkey, TwoFactor
from auth_app.ratelimit import rate_limit_hit
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


class FactorInputSerializer(StrictSerializer):
    """A second factor: a TOTP or recovery code, or a passkey assertion."""

    method = serializers.ChoiceField(choices=METHODS)
    code = serializers.CharField(max_length=64, required=False, default="")
    credential = serializers.JSONField(required=False, default=dict)

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
        responses={200: TotpEnrolmentOutputSerializer, **problems(401, 409)},
    )
    def post(self, request):
        enrolment = mfa.totp_enroll_start(user=request.user)
        return Response(TotpEnrolmentOutputSerializer(enrolment).data)

    @extend_schema(
        operation_id="auth_mfa_totp_disable", responses={204: None, **problems(401, 403, 409)}
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
        request=InputSerializer,
        responses={200: RecoveryCodesOutputSerializer, **problems(400, 401, 409, 429)},
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
        responses={200: RecoveryCodesOutputSerializer, **problems(401, 403, 409)},
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

    class InputSerializer(StrictSerializer):
        name = serializers.CharField(max_length=100, required=False, default="Passkey")
        credential = serializers.JSONField(help_text="navigator.credentials.create()'s result.")

    @extend_schema(
        operation_id="auth_mfa_passkeys",
        responses={200: PasskeyOutputSerializer(many=True), **problems(401)},
    )
    def get(self, request):
        keys = Passkey.objects.filter(user=request.user)
        return Response(PasskeyOutputSerializer(keys, many=True).data)

    @extend_schema(
        operation_id="auth_mfa_passkey_register",
        request=InputSerializer,
        responses={201: PasskeyRegisteredOutputSerializer, **problems(400, 401)},
    )
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        credential = data.validated_data["credential"]
        if not isinstance(credential, dict):
            raise serializers.ValidationError({"credential": ["Expected an object."]})
        passkey, codes = passkeys.passkey_register(
            user=request.user, credential=credential, name=data.validated_data["name"]
        )
        body = PasskeyRegisteredOutputSerializer({**vars(passkey), "recovery_codes": codes}).data
        return Response(body, status=status.HTTP_201_CREATED)


class PasskeyDetailApi(APIView):
    class InputSerializer(StrictSerializer):
        name = serializers.CharField(max_length=100)

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
        passkey = passkeys.passkey_rename(
            passkey=self._passkey(request, passkey_id), name=data.validated_data["name"]
        )
        return Response(PasskeyOutputSerializer(passkey).data)

    @extend_schema(
        operation_id="auth_mfa_passkey_remove", responses={204: None, **problems(401, 403, 404)}
    )
    def delete(self, request, passkey_id):
        passkeys.passkey_remove(passkey=self._passkey(request, passkey_id), session=request.auth)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MfaTokenInputSerializer(StrictSerializer):
    mfa_token = serializers.CharField(max_length=200)


class MfaPasskeyOptionsApi(PublicApi):
    @extend_schema(
        operation_id="auth_mfa_passkey_options",
        request=MfaTokenInputSerializer,
        responses={200: WEBAUTHN_JSON, **problems(400, 429)},
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
        request=InputSerializer,
        responses={200: SignedInOutputSerializer, **problems(400, 429)},
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
        return signed_in_response(user, session, token, status.HTTP_200_OK)


class PasskeySignInOptionsApi(PublicApi):
    @extend_schema(
        operation_id="auth_mfa_passkey_sign_in_options",
        request=None,
        responses={200: WEBAUTHN_JSON, **problems(429)},
    )
    def post(self, request):
        rate_limit_hit(scope="mfa", subject=client_ip(request))
        return Response(passkeys.passkey_authentication_options(user=None))


class PasskeySignInApi(PublicApi):
    class InputSerializer(StrictSerializer):
        credential = serializers.JSONField(help_text="navigator.credentials.get()'s result.")

    @extend_schema(
        operation_id="auth_mfa_passkey_sign_in",
        request=InputSerializer,
        responses={200: SignedInOutputSerializer, **problems(400, 403, 429)},
    )
    def post(self, request):
        rate_limit_hit(scope="sign_in", subject=client_ip(request))
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        credential = data.validated_data["credential"]
        if not isinstance(credential, dict):
            raise serializers.ValidationError({"credential": ["Expected an object."]})
        user, session, token = signin.passkey_sign_in(
            credential=credential, ip_address=client_ip(request), user_agent=user_agent(request)
        )
        return signed_in_response(user, session, token, status.HTTP_200_OK)


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
        credential = serializers.JSONField(required=False, default=dict)

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
        request=InputSerializer,
        responses={200: ReauthenticatedOutputSerializer, **problems(400, 401, 429)},
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
