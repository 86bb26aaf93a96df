"""better-auth's paths under /api/auth/, one module per concern.

Social sign-in (signIn.social, linkSocial, unlinkAccount) and the two-factor plugin's
calls are to come as modules of their own, with their paths added here.
"""

from django.urls import path

from . import email_password, password, sessions, user, verification

urlpatterns = [
    path("sign-up/email", email_password.SignUpEmailApi.as_view()),
    path("sign-in/email", email_password.SignInEmailApi.as_view()),
    path("sign-out", email_password.SignOutApi.as_view()),
    path("get-session", sessions.GetSessionApi.as_view()),
    path("list-sessions", sessions.ListSessionsApi.as_view()),
    path("revoke-session", sessions.RevokeSessionApi.as_view()),
    path("revoke-sessions", sessions.RevokeSessionsApi.as_view()),
    path("revoke-other-sessions", sessions.RevokeOtherSessionsApi.as_view()),
    path("send-verification-email", verification.SendVerificationEmailApi.as_view()),
    path("verify-email", verification.VerifyEmailApi.as_view()),
    path("request-password-reset", password.RequestPasswordResetApi.as_view()),
    path("reset-password/<str:token>", password.ResetPasswordCallbackApi.as_view()),
    path("reset-password", password.ResetPasswordApi.as_view()),
    path("change-password", password.ChangePasswordApi.as_view()),
    path("update-user", user.UpdateUserApi.as_view()),
    path("change-email", user.ChangeEmailApi.as_view()),
    path("delete-user", user.DeleteUserApi.as_view()),
    path("list-accounts", user.ListAccountsApi.as_view()),
]
