"""better-auth's two-factor plugin (twoFactorClient): the authenticator app, the backup codes,
and the second step of a sign-in, over auth_app.mfa and auth_app.signin (docs/mfa.md).

Between the password (or a provider) and the code, the pending sign-in's mfa_token lives in
better-auth's two-factor cookie, signed like the session cookie; verifyTotp and
verifyBackupCode trade it for a session. For a signed-in caller the same calls confirm a new
authenticator app, or prove the session again (a fresh sign-in for sensitive actions).
"""

from django.db import transaction
from rest_framework import serializers
from rest_framework.response import Response

from auth_app import mfa
from auth_app.api.views import PASSWORD, user_agent
from auth_app.errors import (
    InvalidCode,
    InvalidPassword,
    MfaAlreadyEnabled,
    MfaNotPending,
    TokenInvalid,
)
from auth_app.models import TwoFactor
from auth_app.signin import session_reauthenticate, sign_in_verify
from sv_sdk.net import client_ip

from .base import BetterAuthApi, Input, signed_in, status_true
from .cookies import (
    TWO_FACTOR_COOKIE_NAME,
    cookie_token,
    two_factor_cookie_clear,
    two_factor_cookie_set,
)
from .errors import BetterAuthError
from .shapes import user_json

# sv_sdk's method names -> better-auth's (`otp`, a mailed code, sv_sdk does not have; backup
# codes are always offered by the plugin, and passkeys are another plugin's).
_METHODS = {"totp": "totp"}


def two_factor_pending(request, step) -> Response:
    """signIn.email (or a provider) for a user with a second factor: no session yet, the
    pending sign-in in the two-factor cookie, as better-auth's plugin answers."""
    methods = [_METHODS[m] for m in step.methods if m in _METHODS]
    response = Response({"twoFactorRedirect": True, "twoFactorMethods": methods})
    two_factor_cookie_set(request, response, step.mfa_token)
    return response


def _invalid_cookie() -> BetterAuthError:
    return BetterAuthError(401, "INVALID_TWO_FACTOR_COOKIE", "Invalid two factor cookie")


class _TwoFactorApi(BetterAuthApi):
    # Setting up a second factor is what a session held back by the enrolment rule may do.
    mfa_enrollment = True

    def password_prove(self, password: str | None) -> None:
        """The password, as better-auth asks for it, or (for a user without one) a recent
        sign-in. A correct password makes the session fresh (auth.reauthenticated)."""
        user = self.request.user
        if not user.has_usable_password():
            mfa.reauthentication_check(session=self.session)
            return
        if not password:
            raise InvalidPassword()
        session_reauthenticate(
            session=self.session,
            password=password,
            ip_address=client_ip(self.request),
            user_agent=user_agent(self.request),
        )


class _PasswordInput(Input):
    password = serializers.CharField(**PASSWORD, required=False)


class EnableApi(_TwoFactorApi):
    """enable: a new authenticator secret (confirmed by the first verifyTotp) and the backup
    codes, which work once it is confirmed."""

    class InputSerializer(_PasswordInput):
        ignored = ("issuer",)
        method = serializers.ChoiceField(choices=["totp", "otp"], default="totp")

    def post(self, request):
        data = self.body(self.InputSerializer)
        if data["method"] == "otp":
            raise _otp_unavailable()
        self.password_prove(data.get("password"))
        with transaction.atomic():
            enrolment = mfa.totp_enroll_start(user=request.user)
            codes = mfa.recovery_codes_generate(user=request.user, actor=request.user)
        return Response({"method": "totp", "totpURI": enrolment.otpauth_uri, "backupCodes": codes})


class GetTotpUriApi(_TwoFactorApi):
    """getTotpUri: the URI of an enrolment not yet confirmed; a confirmed secret is never shown
    again (as /api/v1)."""

    InputSerializer = _PasswordInput

    def post(self, request):
        data = self.body(self.InputSerializer)
        self.password_prove(data.get("password"))
        pending = mfa.totp_enrolment_pending(user=request.user)
        if pending is None:
            if TwoFactor.objects.filter(user=request.user).exists():
                raise MfaAlreadyEnabled()
            raise MfaNotPending()
        return Response({"totpURI": pending.otpauth_uri})


class DisableApi(_TwoFactorApi):
    InputSerializer = _PasswordInput

    def post(self, request):
        data = self.body(self.InputSerializer)
        self.password_prove(data.get("password"))
        mfa.totp_disable(user=request.user, session=self.session)
        return status_true()


class GenerateBackupCodesApi(_TwoFactorApi):
    InputSerializer = _PasswordInput

    def post(self, request):
        data = self.body(self.InputSerializer)
        self.password_prove(data.get("password"))
        codes = mfa.recovery_codes_regenerate(user=request.user, session=self.session)
        return Response({"status": True, "backupCodes": codes})


class _VerifyApi(_TwoFactorApi):
    """The second step of a sign-in (from the two-factor cookie), or for a signed-in caller the
    confirmation of a new authenticator app or a fresh proof of the session."""

    public = True
    method = ""
    invalid = ("INVALID_CODE", "Invalid code")

    class InputSerializer(Input):
        # Devices are not remembered: every sign-in asks for the second factor.
        ignored = ("trustDevice", "disableSession")
        code = serializers.CharField(max_length=100)

    def post(self, request):
        code = self.body(self.InputSerializer)["code"]
        try:
            if self.session is not None:
                return self.signed_in_verify(request, code)
            return self.sign_in_finish(request, code)
        except InvalidCode:
            raise BetterAuthError(401, *self.invalid) from None

    def signed_in_verify(self, request, code: str) -> Response:
        ip, agent = client_ip(request), user_agent(request)
        if self.method == "totp" and mfa.totp_enrolment_pending(user=request.user):
            mfa.totp_confirm(
                user=request.user,
                code=code,
                ip_address=ip,
                user_agent=agent,
                new_recovery_codes=False,  # enable handed them out
            )
        else:
            session_reauthenticate(
                session=self.session, method=self.method, code=code, ip_address=ip, user_agent=agent
            )
        # The session's handle, as getSession shows it (tokens are stored hashed).
        return Response({"token": self.session.pk, "user": user_json(request.user)})

    def sign_in_finish(self, request, code: str) -> Response:
        _came, mfa_token = cookie_token(request, TWO_FACTOR_COOKIE_NAME)
        if not mfa_token:
            raise _invalid_cookie()
        try:
            user, _session, token = sign_in_verify(
                mfa_token=mfa_token,
                method=self.method,
                code=code,
                ip_address=client_ip(request),
                user_agent=user_agent(request),
            )
        except TokenInvalid:
            raise _invalid_cookie() from None
        response = signed_in(request, {"token": token, "user": user_json(user)}, token)
        two_factor_cookie_clear(request, response)
        return response


class VerifyTotpApi(_VerifyApi):
    method = "totp"


class VerifyBackupCodeApi(_VerifyApi):
    method = "recovery_code"
    invalid = ("INVALID_BACKUP_CODE", "Invalid backup code")


def _otp_unavailable() -> BetterAuthError:
    return BetterAuthError(400, "OTP_NOT_CONFIGURED", "OTP is not available")


class OtpApi(BetterAuthApi):
    """sendOtp and verifyOtp: sv_sdk has no mailed one-time code as a second factor; better-auth
    answers the same when its plugin has no sendOTP configured."""

    public = True

    def post(self, request):
        raise _otp_unavailable()
