"""Email verification (sendVerificationEmail, verifyEmail)."""

from django.http import HttpResponseRedirect
from rest_framework.response import Response

from auth_app.errors import TokenInvalid
from auth_app.ratelimit import rate_limit_hit
from platform_app import flows, tasks
from platform_app.api.auth import email_request_accept
from sv_sdk.net import client_ip, with_params

from .base import BetterAuthApi, status_true
from .errors import error_response
from .origins import redirect_check, without_callback


def callback_redirect(url: str, **params) -> HttpResponseRedirect:
    """Send the browser to `url` (already checked), with `params` added to its query."""
    return HttpResponseRedirect(with_params(url, **params) if params else url)


class SendVerificationEmailApi(BetterAuthApi):
    public = True

    def post(self, request):
        data = without_callback(request, "callbackURL")
        # The link mailed is sv_sdk's own (SV_PUBLIC_URL/verify-email?token=...), so
        # callbackURL is only checked. 200 whatever the address: no enumeration.
        email_request_accept(
            request, scope="send_verification", task=tasks.verification_email_resend, data=data
        )
        return status_true()


class VerifyEmailApi(BetterAuthApi):
    """GET verify-email: idempotent until the token expires.

    Mail scanners open links before people do. The first GET verifies the address and
    uses the token; later ones answer the same while the token lives and the address is
    still verified, and write nothing (flows.email_verify with `repeatable`).
    """

    public = True

    def get(self, request):
        token = request.query_params.get("token", "")
        callback_url = request.query_params.get("callbackURL") or None
        redirect_check(callback_url)
        rate_limit_hit(scope="verify_email", subject=client_ip(request))
        try:
            flows.email_verify(token=token, repeatable=True)
        except TokenInvalid:
            if callback_url:
                return callback_redirect(callback_url, error="INVALID_TOKEN")
            # better-auth answers an unusable verification token with 401.
            return error_response(401, "INVALID_TOKEN", "Invalid token")
        if callback_url:
            return callback_redirect(callback_url)
        return Response({"status": True, "user": None})
