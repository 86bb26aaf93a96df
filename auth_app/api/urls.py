"""API paths of the identity domain, mounted under /api/v1/."""

from django.urls import path

from . import views

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
]
