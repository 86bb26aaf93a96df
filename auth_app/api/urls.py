"""API paths of the identity domain, mounted under /api/v1/."""

from django.urls import path

from . import views

urlpatterns = [
    path("auth/sign-up", views.SignUpApi.as_view(), name="auth-sign-up"),
    path("auth/sign-in", views.SignInApi.as_view(), name="auth-sign-in"),
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
    path("auth/verify-email", views.VerifyEmailApi.as_view(), name="auth-verify-email"),
    path(
        "auth/send-verification-email",
        views.SendVerificationEmailApi.as_view(),
        name="auth-send-verification-email",
    ),
    path("auth/forgot-password", views.ForgotPasswordApi.as_view(), name="auth-forgot-password"),
    path("auth/reset-password", views.ResetPasswordApi.as_view(), name="auth-reset-password"),
    path("auth/change-password", views.ChangePasswordApi.as_view(), name="auth-change-password"),
]
