"""Sign-in and linking with providers: signIn.social, linkSocial, unlinkAccount, over sv_sdk's
OAuth flow (docs/oauth.md).

A sign-in starts here and comes back through sv_sdk's own callback
(`/api/v1/auth/oauth/<id>/callback`, the address registered at the provider), which
runs flows.oauth_sign_in and then answers as better-auth would (`callback_response`): the
better-auth session cookie and a redirect to `callbackURL`, or, for a user with a second
factor, the two-factor cookie and `callbackURL?twoFactorRedirect=true`.
"""

from urllib.parse import urljoin

from django.conf import settings
from django.http import HttpResponseRedirect
from rest_framework import serializers
from rest_framework.response import Response

from auth_app.accounts import account_unlink, oauth_exchange
from auth_app.api.oauth import authorization_start, bind_browser
from auth_app.api.views import user_agent
from auth_app.models import Account
from auth_app.ratelimit import rate_limit_hit
from sv_sdk.net import client_ip, with_params

from .base import BetterAuthApi, Input, status_true
from .cookies import session_cookie_set, two_factor_cookie_set
from .errors import BetterAuthError
from .origins import redirect_check

# The OAuthState mode of a sign-in started here: its callback answers in better-auth's way.
MODE = "betterauth"

_REDIRECTS = ("callbackURL", "newUserCallbackURL", "errorCallbackURL")


class _SocialInput(Input):
    # sv_sdk asks each provider for its configured scopes and sends new and returning users,
    # and failures, to callbackURL (`?error=<code>`).
    ignored = ("scopes", "loginHint", "requestSignUp", "additionalData", "additionalParams")
    provider = serializers.CharField(max_length=100)
    callbackURL = serializers.CharField(max_length=2000, required=False)
    newUserCallbackURL = serializers.CharField(max_length=2000, required=False)
    errorCallbackURL = serializers.CharField(max_length=2000, required=False)
    disableRedirect = serializers.BooleanField(required=False, default=False)
    idToken = serializers.JSONField(required=False)


def _start(view, *, link_user=None) -> Response:
    request = view.request
    rate_limit_hit(scope="sign_in", subject=client_ip(request))
    data = view.body(_SocialInput)
    for field in _REDIRECTS:
        redirect_check(data.get(field))
    if "idToken" in data:
        # Signing in with a token the front end got from the provider: sv_sdk checks ID
        # tokens only at the end of its own redirect flow (state, nonce, PKCE).
        raise BetterAuthError(404, "ID_TOKEN_NOT_SUPPORTED", "id_token not supported")
    # A path is one of this site's: the browser comes back to SV_PUBLIC_URL.
    callback_url = urljoin(f"{settings.SV_PUBLIC_URL}/", data.get("callbackURL") or "/")
    url, browser_token = authorization_start(
        request, data["provider"], callback_url=callback_url, mode=MODE, link_user=link_user
    )
    redirect = not data["disableRedirect"]
    response = Response({"url": url, "redirect": redirect})
    if redirect:
        response["Location"] = url
    return bind_browser(response, browser_token)


class SignInSocialApi(BetterAuthApi):
    public = True

    def post(self, request):
        return _start(self)


class LinkSocialApi(BetterAuthApi):
    def post(self, request):
        return _start(self, link_user=request.user)


class UnlinkAccountApi(BetterAuthApi):
    """unlinkAccount({accountId}): the account's `id` from listAccounts. Never the last way to
    sign in (FAILED_TO_UNLINK_LAST_ACCOUNT); the password (`credential`) is not an account here
    and cannot be unlinked."""

    class InputSerializer(Input):
        accountId = serializers.CharField(max_length=200)
        providerId = serializers.CharField(max_length=100, required=False)

    def post(self, request):
        data = self.body(self.InputSerializer)
        accounts = Account.objects.filter(user=request.user, pk=data["accountId"])
        if "providerId" in data:
            accounts = accounts.filter(provider_id=data["providerId"])
        account = accounts.first()
        if account is None:
            raise BetterAuthError(400, "ACCOUNT_NOT_FOUND", "Account not found")
        account_unlink(account=account, actor=request.user)
        return status_true()


def callback_response(request, *, callback_url: str, session, token: str | None):
    """The provider callback's answer for a sign-in or link started here (see the module)."""
    if session is None and token is None:  # a link
        return HttpResponseRedirect(callback_url)
    if session is None:
        # A second factor is due: trade the one-time code for the pending sign-in.
        step = oauth_exchange(
            code=token, ip_address=client_ip(request), user_agent=user_agent(request)
        )
        response = HttpResponseRedirect(with_params(callback_url, twoFactorRedirect="true"))
        two_factor_cookie_set(request, response, step.mfa_token)
        return response
    response = HttpResponseRedirect(callback_url)
    session_cookie_set(request, response, token)
    return response
