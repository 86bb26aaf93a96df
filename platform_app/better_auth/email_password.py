"""Sign-up, sign-in and sign-out with an email and a password (signUp.email, signIn.email,
signOut)."""

from rest_framework import serializers

from auth_app import services, signin
from auth_app.api.serializers import UserNameField
from auth_app.api.views import PASSWORD, user_agent
from auth_app.ratelimit import rate_limit_hit
from platform_app import flows
from sv_sdk.net import client_ip

from .base import BetterAuthApi, Input, signed_in, signed_out
from .origins import redirect_check
from .shapes import user_json
from .two_factor import two_factor_pending

# What better-auth's client may send that sv_sdk does not use: sessions always last
# SV_SESSION_TTL (`rememberMe`), and the answer is JSON whatever `callbackURL` says.
_IGNORED = ("rememberMe", "callbackURL")


def _callback_check(request) -> str | None:
    url = request.data.get("callbackURL") if isinstance(request.data, dict) else None
    redirect_check(url)
    return url


class SignUpEmailApi(BetterAuthApi):
    public = True

    class InputSerializer(Input):
        ignored = _IGNORED
        email = serializers.EmailField(max_length=254)
        password = serializers.CharField(**PASSWORD)
        name = UserNameField(default="")
        image = serializers.URLField(max_length=2000, allow_blank=True, allow_null=True, default="")

    def post(self, request):
        _callback_check(request)
        rate_limit_hit(scope="sign_up", subject=client_ip(request))
        data = self.body(self.InputSerializer)
        user, _session, token = flows.user_sign_up(
            email=data["email"],
            password=data["password"],
            name=data["name"],
            image=data["image"] or "",
            ip_address=client_ip(request),
            user_agent=user_agent(request),
        )
        return signed_in(request, {"token": token, "user": user_json(user)}, token)


class SignInEmailApi(BetterAuthApi):
    public = True

    class InputSerializer(Input):
        ignored = _IGNORED
        email = serializers.CharField(max_length=254)
        password = serializers.CharField(**PASSWORD)

    def post(self, request):
        callback_url = _callback_check(request)
        rate_limit_hit(scope="sign_in", subject=client_ip(request))
        data = self.body(self.InputSerializer)
        step = signin.sign_in(**data, ip_address=client_ip(request), user_agent=user_agent(request))
        if step.session is None:
            # The user has a second factor: the two-factor plugin's calls finish it.
            return two_factor_pending(request, step)
        body = {"redirect": bool(callback_url), "token": step.token, "user": user_json(step.user)}
        if callback_url:
            body["url"] = callback_url
        return signed_in(request, body, step.token)


class SignOutApi(BetterAuthApi):
    public = True
    mfa_enrollment = True

    def post(self, request):
        if self.session is not None:
            services.session_revoke(session=self.session, actor=request.user, reason="sign_out")
        return signed_out(request, {"success": True})
