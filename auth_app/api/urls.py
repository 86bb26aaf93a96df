"""API paths of the identity domain, mounted under /api/v1/."""

from django.urls import path

from . import mfa, oauth, views

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
    path("auth/mfa", mfa.MfaStatusApi.as_view(), name="auth-mfa"),
    path("auth/mfa/totp", mfa.TotpApi.as_view(), name="auth-mfa-totp"),
    path("auth/mfa/totp/confirm", mfa.TotpConfirmApi.as_view(), name="auth-mfa-totp-confirm"),
    path("auth/mfa/recovery-codes", mfa.RecoveryCodesApi.as_view(), name="auth-mfa-recovery-codes"),
    path(
        "auth/mfa/passkeys/options",
        mfa.PasskeyRegistrationOptionsApi.as_view(),
        name="auth-mfa-passkey-options",
    ),
    path("auth/mfa/passkeys", mfa.PasskeyListApi.as_view(), name="auth-mfa-passkeys"),
    path(
        "auth/mfa/passkeys/<str:passkey_id>",
        mfa.PasskeyDetailApi.as_view(),
        name="auth-mfa-passkey",
    ),
    path(
        "auth/mfa/challenge/passkey",
        mfa.MfaPasskeyOptionsApi.as_view(),
        name="auth-mfa-challenge-passkey",
    ),
    path("auth/mfa/verify", mfa.MfaVerifyApi.as_view(), name="auth-mfa-verify"),
    path(
        "auth/mfa/passkey-sign-in/options",
        mfa.PasskeySignInOptionsApi.as_view(),
        name="auth-mfa-passkey-sign-in-options",
    ),
    path(
        "auth/mfa/passkey-sign-in", mfa.PasskeySignInApi.as_view(), name="auth-mfa-passkey-sign-in"
    ),
    path(
        "auth/mfa/reauthenticate/options",
        mfa.ReauthenticateOptionsApi.as_view(),
        name="auth-mfa-reauthenticate-options",
    ),
    path(
        "auth/mfa/reauthenticate", mfa.ReauthenticateApi.as_view(), name="auth-mfa-reauthenticate"
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
