"""API paths of the identity domain, mounted under /api/v1/."""

from django.urls import path

from . import oauth, views

urlpatterns = [
    path("auth/sign-in", views.SignInApi.as_view(), name="auth-sign-in"),
    path("auth/csrf", views.CsrfApi.as_view(), name="auth-csrf"),
    path("auth/sign-out", views.SignOutApi.as_view(), name="auth-sign-out"),
    path("auth/session", views.SessionApi.as_view(), name="auth-session"),
    path("auth/me", views.MeApi.as_view(), name="auth-me"),
    path("auth/sessions", views.SessionListApi.as_view(), name="auth-sessions"),
    path(
        "auth/sessions/revoke-others",
        views.SessionRevokeOthersApi.as_view(),
        name="auth-sessions-revoke-others",
    ),
    path(
        "auth/sessions/<str:session_id>",
        views.SessionRevokeApi.as_view(),
        name="auth-session-revoke",
    ),
    path("auth/providers", oauth.ProviderListApi.as_view(), name="auth-providers"),
    path("auth/oauth/exchange", oauth.OAuthExchangeApi.as_view(), name="auth-oauth-exchange"),
    path(
        "auth/oauth/<str:provider_id>/authorize",
        oauth.OAuthAuthorizeApi.as_view(),
        name="auth-oauth-authorize",
    ),
    path("auth/oauth/<str:provider_id>/link", oauth.OAuthLinkApi.as_view(), name="auth-oauth-link"),
    path(
        "auth/accounts/<str:account_id>",
        oauth.AccountUnlinkApi.as_view(),
        name="auth-account-unlink",
    ),
]
