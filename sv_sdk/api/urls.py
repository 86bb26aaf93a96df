"""Cross-domain API paths (users), mounted under /api/v1/."""

from django.urls import path

from . import users

urlpatterns = [
    path("users", users.UserCollectionApi.as_view(), name="users"),
    path("users/<str:user_id>", users.UserDetailApi.as_view(), name="user"),
]
