"""API paths that span apps, under /api/v1/: the flows' endpoints, users, their sessions."""

from django.urls import path

from . import auth, oauth, sessions, users

urlpatterns = [
    path("auth/sign-up", auth.SignUpApi.as_view(), name="auth-sign-up"),
    path("auth/verify-email", auth.VerifyEmailApi.as_view(), name="auth-verify-email"),
    path(
        "auth/send-verification-email",
        auth.SendVerificationEmailApi.as_view(),
        name="auth-send-verification-email",
    ),
    path("auth/forgot-password", auth.ForgotPasswordApi.as_view(), name="auth-forgot-password"),
    path("auth/reset-password", auth.ResetPasswordApi.as_view(), name="auth-reset-password"),
    path("auth/change-password", auth.ChangePasswordApi.as_view(), name="auth-change-password"),
    path(
        "auth/oauth/<str:provider_id>/callback",
        oauth.OAuthCallbackApi.as_view(),
        name="auth-oauth-callback",
    ),
    path("users", users.UserCollectionApi.as_view(), name="users"),
    path("users/<str:user_id>", users.UserDetailApi.as_view(), name="user"),
    path(
        "users/<str:user_id>/sessions", sessions.UserSessionListApi.as_view(), name="user-sessions"
    ),
    path(
        "users/<str:user_id>/sessions/revoke",
        sessions.UserSessionRevokeApi.as_view(),
        name="user-sessions-revoke",
    ),
]
