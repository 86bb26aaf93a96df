"""better-auth's paths under /api/auth/, one module per concern."""

from django.urls import path

from . import email_password, password, sessions, social, two_factor, user, verification

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
    path("sign-in/social", social.SignInSocialApi.as_view()),
    path("link-social", social.LinkSocialApi.as_view()),
    path("unlink-account", social.UnlinkAccountApi.as_view()),
    path("two-factor/enable", two_factor.EnableApi.as_view()),
    path("two-factor/get-totp-uri", two_factor.GetTotpUriApi.as_view()),
    path("two-factor/verify-totp", two_factor.VerifyTotpApi.as_view()),
    path("two-factor/disable", two_factor.DisableApi.as_view()),
    path("two-factor/generate-backup-codes", two_factor.GenerateBackupCodesApi.as_view()),
    path("two-factor/verify-backup-code", two_factor.VerifyBackupCodeApi.as_view()),
    path("two-factor/send-otp", two_factor.OtpApi.as_view()),
    path("two-factor/verify-otp", two_factor.OtpApi.as_view()),
]
