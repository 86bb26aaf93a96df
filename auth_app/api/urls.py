"""API paths of auth_app, mounted under /api/v1/."""

urlpatterns = []
