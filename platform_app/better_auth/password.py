"""Passwords: requestPasswordReset, the reset-password/:token redirect, resetPassword and
changePassword."""

from rest_framework import serializers
from rest_framework.response import Response

from auth_app.api.views import PASSWORD, user_agent
from auth_app.mfa import reauthentication_check
from auth_app.ratelimit import rate_limit_hit
from auth_app.selectors import verification_usable
from auth_app.services import PASSWORD_RESET
from platform_app import flows, tasks
from platform_app.api.auth import email_request_accept
from sv_sdk.net import client_ip

from .base import BetterAuthApi, Input, status_true
from .errors import BetterAuthError
from .origins import redirect_check, without_callback
from .shapes import user_json
from .verification import callback_redirect


class RequestPasswordResetApi(BetterAuthApi):
    public = True

    def post(self, request):
        data = without_callback(request, "redirectTo")
        # The mailed link is sv_sdk's own, SV_PUBLIC_URL/reset-password?token=...; the
        # front end's page there calls resetPassword (docs/better-auth.md).
        email_request_accept(
            request, scope="forgot_password", task=tasks.password_reset_request, data=data
        )
        return Response(
            {
                "status": True,
                "message": (
                    "If this email exists in our system, check your email for the reset link"
                ),
            }
        )


class ResetPasswordCallbackApi(BetterAuthApi):
    """GET reset-password/:token: to callbackURL with the token if it is usable, else with
    `error=INVALID_TOKEN`. It only looks: the token is used by resetPassword."""

    public = True

    def get(self, request, token):
        callback_url = request.query_params.get("callbackURL") or ""
        redirect_check(callback_url)
        if not callback_url:
            raise BetterAuthError(400, "CALLBACK_URL_REQUIRED", "callbackURL is required")
        rate_limit_hit(scope="reset_password", subject=client_ip(request))
        if verification_usable(token=token, purpose=PASSWORD_RESET):
            return callback_redirect(callback_url, token=token)
        return callback_redirect(callback_url, error="INVALID_TOKEN")


class ResetPasswordApi(BetterAuthApi):
    public = True

    class InputSerializer(Input):
        newPassword = serializers.CharField(**PASSWORD)
        token = serializers.CharField(max_length=200, required=False)

    def post(self, request):
        rate_limit_hit(scope="reset_password", subject=client_ip(request))
        data = self.body(self.InputSerializer)
        token = data.get("token") or request.query_params.get("token") or ""
        flows.password_reset(token=token, new_password=data["newPassword"])
        return status_true()


class ChangePasswordApi(BetterAuthApi):
    class InputSerializer(Input):
        currentPassword = serializers.CharField(**PASSWORD)
        newPassword = serializers.CharField(**PASSWORD)
        revokeOtherSessions = serializers.BooleanField(default=False)

    def post(self, request):
        rate_limit_hit(scope="change_password", subject=request.user.pk)
        reauthentication_check(session=self.session)
        data = self.body(self.InputSerializer)
        flows.password_change(
            user=request.user,
            current_password=data["currentPassword"],
            new_password=data["newPassword"],
            revoke_other_sessions=data["revokeOtherSessions"],
            current_session=self.session,
            ip_address=client_ip(request),
            user_agent=user_agent(request),
        )
        # The current session goes on (sv_sdk ends only the others), so no new token.
        request.user.refresh_from_db()
        return Response({"token": None, "user": user_json(request.user)})
