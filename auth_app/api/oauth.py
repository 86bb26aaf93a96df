"""Sign-in providers under /api/v1/auth/: list them, start a sign-in or a link, exchange, unlink."""

from django.conf import settings
from django.db import transaction
from django.http import HttpResponseRedirect
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from auth_app.accounts import (
    account_get_for_user,
    account_unlink,
    callback_url_clean,
    oauth_exchange,
    oauth_state_create,
)
from auth_app.errors import (
    AccountNotFound,
    LastCredential,
    OAuthFailed,
    RateLimited,
    TokenInvalid,
    UnknownProvider,
)
from auth_app.oauth import authorization_url, provider_get, providers
from auth_app.ratelimit import rate_limit_hit
from auth_app.tokens import token_generate
from sv_sdk.api.schema import UNSTATED_RULES
from sv_sdk.api.serializers import StrictSerializer, problems
from sv_sdk.net import client_ip, cookie_set

from .views import SIGN_IN_RESPONSE, PublicApi, sign_in_step_response, user_agent

COOKIE_PATH = "/api/v1/auth/oauth/"
CALLBACK_RULE = (
    "callback_url must be at one of this application's origins (SV_TRUSTED_ORIGINS): 400"
    " naming `callback_url` otherwise."
)
# What starting a sign-in can answer besides the input's own problems: the provider's
# discovery document is fetched then.
START_PROBLEMS = problems(
    400,
    UnknownProvider,
    RateLimited,
    *(OAuthFailed(code) for code in ("provider_error", "provider_unavailable")),
)


class ProviderOutputSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    type = serializers.CharField(source="preset", help_text="oidc, google, microsoft or github")


class AuthorizeUrlOutputSerializer(serializers.Serializer):
    url = serializers.URLField(help_text="Open this URL in the user's browser.")


def authorization_start(request, provider_id: str, *, callback_url=None, mode, link_user=None):
    """The provider's URL for a new sign-in, and the cookie that binds it to this browser."""
    provider = provider_get(provider_id)
    callback_url = callback_url_clean(callback_url)
    browser_token = request.COOKIES.get(settings.SV_OAUTH_COOKIE_NAME) or token_generate()
    # The state row goes only if the provider's URL could be built (discovery answered).
    with transaction.atomic():
        state, nonce, code_verifier = oauth_state_create(
            provider_id=provider.id,
            callback_url=callback_url,
            mode=mode,
            browser_token=browser_token,
            link_user=link_user,
        )
        url = authorization_url(provider, state=state, nonce=nonce, code_verifier=code_verifier)
    return url, browser_token


def bind_browser(response, browser_token: str):
    # Lax: the provider's redirect back is a top-level GET, which carries it.
    cookie_set(
        response,
        settings.SV_OAUTH_COOKIE_NAME,
        browser_token,
        max_age=settings.SV_OAUTH_STATE_TTL,
        secure=settings.SV_SESSION_COOKIE_SECURE,
        path=COOKIE_PATH,
    )
    return response


class ProviderListApi(PublicApi):
    @extend_schema(
        operation_id="auth_providers", responses={200: ProviderOutputSerializer(many=True)}
    )
    def get(self, request):
        enabled = [p for p in providers() if p.enabled]
        return Response(ProviderOutputSerializer(enabled, many=True).data)


class OAuthAuthorizeApi(PublicApi):
    """Start a sign-in: POST answers the URL to open; GET redirects the browser there."""

    class InputSerializer(StrictSerializer):
        callback_url = serializers.URLField(max_length=2000, required=False)
        mode = serializers.ChoiceField(
            choices=["cookie", "code"],
            default="cookie",
            help_text="cookie: the callback sets the session cookie; code: it adds a one-time "
            "`code` to callback_url, for POST /api/v1/auth/oauth/exchange.",
        )

    def _start(self, request, provider_id, data):
        rate_limit_hit(scope="sign_in", subject=client_ip(request))
        data = self.InputSerializer(data=data)
        data.is_valid(raise_exception=True)
        return authorization_start(request, provider_id, **data.validated_data)

    @extend_schema(
        operation_id="auth_oauth_authorize",
        description=CALLBACK_RULE,
        extensions={UNSTATED_RULES: ["callback_url"]},
        request=InputSerializer,
        responses={200: AuthorizeUrlOutputSerializer, **START_PROBLEMS},
    )
    def post(self, request, provider_id):
        url, browser_token = self._start(request, provider_id, request.data)
        return bind_browser(Response({"url": url}), browser_token)

    @extend_schema(
        operation_id="auth_oauth_authorize_redirect",
        description=CALLBACK_RULE,
        extensions={UNSTATED_RULES: ["callback_url"]},
        parameters=[InputSerializer],
        responses={302: None, **START_PROBLEMS},
    )
    def get(self, request, provider_id):
        url, browser_token = self._start(request, provider_id, request.query_params.dict())
        return bind_browser(HttpResponseRedirect(url), browser_token)


class OAuthLinkApi(APIView):
    """Link a provider to the signed-in user: answers the URL to open in their browser."""

    class InputSerializer(StrictSerializer):
        callback_url = serializers.URLField(max_length=2000, required=False)

    @extend_schema(
        operation_id="auth_oauth_link",
        description=CALLBACK_RULE,
        extensions={UNSTATED_RULES: ["callback_url"]},
        request=InputSerializer,
        responses={200: AuthorizeUrlOutputSerializer, **START_PROBLEMS},
    )
    def post(self, request, provider_id):
        rate_limit_hit(scope="sign_in", subject=client_ip(request))
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        url, browser_token = authorization_start(
            request,
            provider_id,
            callback_url=data.validated_data.get("callback_url"),
            mode="cookie",
            link_user=request.user,
        )
        return bind_browser(Response({"url": url}), browser_token)


class OAuthExchangeApi(PublicApi):
    class InputSerializer(StrictSerializer):
        code = serializers.CharField(max_length=200)

    @extend_schema(
        operation_id="auth_oauth_exchange",
        description="The code must be one a sign-in in the code mode returned, unused and"
        " unexpired: 400 `token_invalid` otherwise.",
        extensions={UNSTATED_RULES: ["token_invalid"]},
        request=InputSerializer,
        responses={200: SIGN_IN_RESPONSE, **problems(TokenInvalid, RateLimited)},
    )
    def post(self, request):
        rate_limit_hit(scope="sign_in", subject=client_ip(request))
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        step = oauth_exchange(
            code=data.validated_data["code"],
            ip_address=client_ip(request),
            user_agent=user_agent(request),
        )
        return sign_in_step_response(request, step)


class AccountUnlinkApi(APIView):
    @extend_schema(
        operation_id="auth_account_unlink",
        responses={204: None, **problems(LastCredential, AccountNotFound)},
    )
    def delete(self, request, account_id):
        account = account_get_for_user(user=request.user, account_id=account_id)
        account_unlink(account=account, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
