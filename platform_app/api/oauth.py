"""The provider's redirect back after a sign-in or a link: it runs the account-resolution flow."""

from django.conf import settings
from django.http import HttpResponseRedirect
from django.middleware.csrf import rotate_token
from drf_spectacular.utils import OpenApiParameter, extend_schema

from auth_app.accounts import oauth_sign_in_failed, oauth_state_consume
from auth_app.api.oauth import COOKIE_PATH
from auth_app.api.views import PublicApi, set_session_cookie, user_agent
from auth_app.errors import OAuthFailed, RateLimited, UnknownProvider
from auth_app.oauth import identity_fetch, provider_get
from auth_app.ratelimit import rate_limit_hit
from platform_app import flows
from platform_app.better_auth import social
from sv_sdk.api.serializers import problems
from sv_sdk.net import client_ip, with_params


class OAuthCallbackApi(PublicApi):
    """Where the provider sends the browser back: always a redirect to the callback URL,
    with `error=<code>` on failure, `code=<one-time code>` in the code mode, or `linked`."""

    @extend_schema(
        operation_id="auth_oauth_callback",
        parameters=[
            OpenApiParameter("code", str),
            OpenApiParameter("state", str),
            OpenApiParameter("error", str),
        ],
        responses={302: None, **problems(UnknownProvider)},
    )
    def get(self, request, provider_id):
        provider = provider_get(provider_id)
        ip, agent = client_ip(request), user_agent(request)
        callback_url, email, mode = f"{settings.SV_PUBLIC_URL}/", "", ""
        try:
            try:
                rate_limit_hit(scope="sign_in", subject=ip)
            except RateLimited:
                raise OAuthFailed("rate_limited") from None
            state = oauth_state_consume(
                state=request.query_params.get("state", ""),
                browser_token=request.COOKIES.get(settings.SV_OAUTH_COOKIE_NAME, ""),
                provider_id=provider.id,
            )
            callback_url, mode = state.callback_url, state.mode
            if "error" in request.query_params:
                denied = request.query_params["error"] == "access_denied"
                raise OAuthFailed("access_denied" if denied else "provider_error")
            identity = identity_fetch(
                provider,
                code=request.query_params.get("code", ""),
                code_verifier=state.code_verifier,
                nonce=state.nonce,
            )
            email = identity.email
            _user, session, token = flows.oauth_sign_in(
                identity=identity,
                state=state,
                trusted_for_linking=provider.trusted_for_linking,
                ip_address=ip,
                user_agent=agent,
            )
        except OAuthFailed as exc:
            oauth_sign_in_failed(
                provider_id=provider.id,
                reason=exc.code,
                email=email,
                ip_address=ip,
                user_agent=agent,
            )
            target = exc.callback_url or callback_url
            return HttpResponseRedirect(with_params(target, error=exc.code))
        if mode == social.MODE:
            # Started at /api/auth (better-auth's signIn.social or linkSocial).
            response = social.callback_response(
                request, callback_url=callback_url, session=session, token=token
            )
        elif session is None and token is None:
            response = HttpResponseRedirect(with_params(callback_url, linked=provider.id))
        elif session is None:
            response = HttpResponseRedirect(with_params(callback_url, code=token))
        else:
            response = HttpResponseRedirect(callback_url)
            set_session_cookie(response, token, session)
            # A fresh CSRF token at each sign-in, as the password sign-in does.
            rotate_token(request._request)
        response.delete_cookie(settings.SV_OAUTH_COOKIE_NAME, path=COOKIE_PATH, samesite="Lax")
        return response
