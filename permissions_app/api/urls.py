"""API paths of permissions_app, mounted under /api/v1/."""

urlpatterns = []
