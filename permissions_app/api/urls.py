"""API paths of permissions_app, mounted under /api/v1/."""

from django.urls import path

from . import views

urlpatterns = [
    path("roles", views.RoleCollectionApi.as_view(), name="roles"),
    path("roles/<str:role_id>", views.RoleDetailApi.as_view(), name="role"),
    path("users/<str:user_id>/roles", views.UserRoleCollectionApi.as_view(), name="user-roles"),
    path(
        "users/<str:user_id>/roles/<str:role_id>",
        views.UserRoleDetailApi.as_view(),
        name="user-role",
    ),
    path("auth/me/permissions", views.MyPermissionsApi.as_view(), name="auth-me-permissions"),
]
